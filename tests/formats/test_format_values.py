"""Format values: string round trip, properties against enumeration, presets."""

from __future__ import annotations

import math

import pytest
import torch

from quantscope import ALIASES, Binary, FixedPoint, Float32, MiniFloat, PowerOfTwo, parse_format

ROUND_TRIP = [
    "float32", "fixed<8,4>", "fixed<8,-3>", "fixed<4,12>", "ufixed<8,8>", "fixed<16,auto>", "ufixed<6,auto>",
    "fixed<8,4,overflow=wrap>", "float<5,10>", "float<4,3,special=fn>", "float<4,3,9>", "float<3,2,special=none>",
    "float<4,2,subnormals=off>", "float<5,2,overflow=inf>", "float<8,23>", "pow2<6>", "pow2<4,-2>", "binary",
    "binary<mean>", "binary<0.25>",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_str_round_trips(text):
    fmt = parse_format(text)
    assert str(fmt) == text
    assert parse_format(str(fmt)) == fmt
    assert hash(parse_format(text)) == hash(fmt)


def test_parsing_is_case_and_space_insensitive_and_accepts_options():
    assert parse_format(" Fixed < 8 , 4 > ") == FixedPoint(8, 4)
    assert parse_format("FLOAT<5,10,bias=15>") == MiniFloat(5, 10)
    assert parse_format("float<4,3,subnormals=false>") == MiniFloat(4, 3, subnormals=False)
    assert parse_format("e4m3fn") == MiniFloat(4, 3, special="fn")
    assert parse_format("bf16") == MiniFloat(8, 7)
    assert parse_format("int8") == FixedPoint(8, 0)
    assert parse_format("uint8") == FixedPoint(8, 0, signed=False)
    assert parse_format(FixedPoint(4, 2)) == FixedPoint(4, 2)
    assert all(parse_format(alias) == parse_format(target) for alias, target in ALIASES.items())


@pytest.mark.parametrize(
    "fmt,bits,max_value,min_positive,step,count",
    [
        (FixedPoint(8, 4), 8, 127 / 16, 1 / 16, 1 / 16, 256),
        (FixedPoint(8, 4, signed=False), 8, 255 / 16, 1 / 16, 1 / 16, 256),
        (FixedPoint(4, -2), 4, 28.0, 4.0, 4.0, 16),
        (MiniFloat(5, 10), 16, 65504.0, 2.0**-24, None, 2 * (2**15 - 2**10) - 1),
        (MiniFloat(8, 7), 16, float(torch.finfo(torch.bfloat16).max), 2.0**-133, None, 2 * (2**15 - 2**7) - 1),
        (MiniFloat(5, 2), 8, 57344.0, 2.0**-16, None, 2 * (2**7 - 2**2) - 1),
        (MiniFloat(4, 3, special="fn"), 8, 448.0, 2.0**-9, None, 2 * (2**7 - 1) - 1),
        (MiniFloat(4, 3, special="none"), 8, 480.0, 2.0**-9, None, 255),
        (MiniFloat(4, 3, subnormals=False), 8, 240.0, 2.0**-6, None, 2 * (2**7 - 2**3 - 7) - 1),
        (PowerOfTwo(6, 0), 6, 1.0, 2.0**-30, None, 63),
        (Binary(), 1, 1.0, 1.0, 2.0, 2),
    ],
    ids=str,
)
def test_properties_agree_with_enumeration(fmt, bits, max_value, min_positive, step, count):
    assert fmt.bits == bits
    assert fmt.max_value == max_value and fmt.min_positive == min_positive and fmt.step == step
    assert fmt.num_values == count
    v = fmt.values()
    assert v.numel() == count and v.max().item() == max_value
    assert v[v > 0].min().item() == min_positive
    if step is not None:
        assert torch.allclose(v.diff(), torch.full_like(v.diff(), step))
    assert torch.equal(v, v.float().double()), "every value must be a float32 value"


@pytest.mark.parametrize("dtype,fmt", [(torch.float16, "fp16"), (torch.bfloat16, "bf16"), (torch.float8_e5m2, "e5m2"), (torch.float8_e4m3fn, "e4m3fn")])
def test_presets_describe_the_hardware_dtype(dtype, fmt):
    f = parse_format(fmt)
    info = torch.finfo(dtype)
    assert f.bits == info.bits and f.max_value == info.max and f.min_normal == info.tiny
    assert f.min_positive == info.smallest_normal * info.eps  # smallest subnormal


def test_adaptive_formats_refuse_static_questions_until_resolved():
    with pytest.raises(ValueError, match="adaptive"):
        FixedPoint(8, "auto").values()
    with pytest.raises(ValueError, match="resolve"):
        _ = PowerOfTwo(6).max_value
    assert FixedPoint(8, "auto").adaptive and not FixedPoint(8, 1).adaptive


def test_values_refuses_huge_formats():
    with pytest.raises(ValueError, match="at most 65536"):
        FixedPoint(20, 4).values()
    assert Float32().bits == 32 and Float32().max_value == float(torch.finfo(torch.float32).max)


def test_wide_fixed_point_range_stays_exact_in_float32():
    x = torch.tensor([3e9, -3e9, 1.5])
    from quantscope import quantize

    y = quantize(x, "fixed<32,0>")
    assert y.tolist() == [2**31 - 128, -(2**31), 2.0]  # largest float32 <= 2**31 - 1 is 2**31 - 128
    assert FixedPoint(64, 0).max_value == math.ldexp(2**53 - 1, 10)

"""Issue 14's cases, one by one: wide formats, float64 inputs, unsigned accumulators, the parser."""

from __future__ import annotations

import math

import pytest
import torch

from quantscope import Binary, FixedPoint, arith, parse_format, quantize


def test_wide_fixed_point_saturates_inside_its_range_on_float32():
    fmt = parse_format("fixed<32,0>")  # max 2**31 - 1 is no float32; the largest grid float32 is 2**31 - 128
    out = quantize(torch.tensor([3e9, -3e9, 2147483600.0]), fmt)
    assert out.tolist() == [2147483520.0, -2147483648.0, 2147483520.0]
    assert all(fmt.min_value <= v <= fmt.max_value for v in out.tolist())
    assert quantize(torch.tensor([3e9], dtype=torch.float64), fmt).item() == 2**31 - 1  # float64 holds the grid


def test_wide_wrapping_formats_are_refused_on_float32_and_exact_on_float64():
    fmt = parse_format("ufixed<32,16,overflow=wrap>")
    with pytest.raises(ValueError, match="wrapping codes of 32 bits cannot be held in a torch.float32 tensor"):
        quantize(torch.tensor([-1e-10]), fmt, "floor")
    got = quantize(torch.tensor([-1e-10], dtype=torch.float64), fmt, "floor").item()
    assert got == (2**32 - 1) / 2**16 <= fmt.max_value  # -1 step wraps to the top code


def test_wrapping_keeps_huge_finite_float64_inputs_finite():
    got = quantize(torch.tensor([1.7976931348623157e308, -1e300] * 8, dtype=torch.float64), "fixed<8,4,overflow=wrap>")
    assert torch.isfinite(got).all() and got[:2].tolist() == [0.0, 0.0]  # both are multiples of the 16-unit period


def test_floor_of_tiny_negative_float64_inputs_is_minus_one_step():
    assert quantize(torch.tensor([-5e-324], dtype=torch.float64), "fixed<8,-20>", "floor").item() == -(2.0**20)
    assert quantize(torch.tensor([-5e-324], dtype=torch.float64), "float<4,3,-100,subnormals=off>", "floor").item() == -(2.0**101)
    assert math.copysign(1, quantize(torch.tensor([-0.0], dtype=torch.float64), "fixed<8,-20>", "floor").item()) == -1


def test_zero_results_keep_the_sign_of_the_input_in_every_family():
    x = torch.tensor([-0.001, 0.001, -0.0])
    for fmt in ["fixed<8,2>", "ufixed<8,2>", "fixed<8,2,overflow=wrap>", "float<4,1>", "pow2<4,0>"]:
        got = quantize(x, fmt)
        assert [math.copysign(1, v) for v in got.tolist()] == [-1, 1, -1], fmt
        for mode in ("floor", "toward_zero", "stochastic"):
            if mode != "floor":
                assert math.copysign(1, quantize(x[2:], fmt, mode).item()) == -1, (fmt, mode)


def test_adaptive_fixed_point_on_huge_values_stays_inside_float32():
    fmt = parse_format("fixed<8,auto>").resolve(torch.tensor([2e38]))
    assert fmt == FixedPoint(8, -120) and math.isfinite(fmt.min_value)
    assert quantize(torch.tensor([2e38, -3e38]), "fixed<8,auto>").tolist() == [127 * 2.0**120, -128 * 2.0**120]
    with pytest.raises(ValueError, match=r"values reach -2\*\*128, beyond float32's range; use frac >= -120"):
        FixedPoint(8, -121)


def test_formats_quantize_cannot_represent_are_refused_by_the_parser():
    with pytest.raises(ValueError, match="wrapping fixed point needs at most 53 bits"):
        parse_format("ufixed<64,0,overflow=wrap>")
    with pytest.raises(ValueError, match=r"scale 0.1 is not a float32 value.*use binary<0.10000000149011612>"):
        parse_format("binary<0.1>")
    assert Binary(0.5).values().tolist() == [-0.5, 0.5]


@pytest.mark.parametrize("text,message", [
    ("float<4,3,7,bias=5>", r"the bias is given twice \(7 and bias=5\)"),
    ("fixed<8,4,overflow=wrap,overflow=saturate>", r"option 'overflow' is given twice"),
    ("float<4,3,special=fn,special=none>", r"option 'special' is given twice"),
    ("float<4,3,subnormals=off,subnormals=on>", r"option 'subnormals' is given twice"),
    ("float<1000000000,3>", r"1000000000 exponent bits are far beyond float32's range"),
    ("float<100000,3>", r"100000 exponent bits are far beyond float32's range"),
    ("fixed<8,99999999999999999999>", r"frac must be an integer"),
    ("int8<3>", r"int8<channel>, int8<tensor> or int8<group=G> \(a scaled integer\), or int8 with key=value options only"),
    ("x" * 300, r"too long"),
])
def test_the_parser_refuses_contradictions_and_huge_numbers_quickly(text, message):
    with pytest.raises(ValueError, match=message):
        parse_format(text)


def test_aliases_take_options():
    assert parse_format("int8<overflow=wrap>") == FixedPoint(8, 0, overflow="wrap")
    assert parse_format("e4m3fn") == parse_format("float<4,3,special=fn>")
    assert str(parse_format("uint8<overflow=wrap>")) == "ufixed<8,0,overflow=wrap>"


def test_the_sum_with_a_bias_rounds_once():
    """2**30 + (2**-21 + 2**-44) in float64 is 2**30 + 2**-21, exactly halfway on the 2**-20 grid:
    rounding that again gives 2**30 (ties to even); the exact sum is past halfway."""
    acc = parse_format("fixed<52,20>")
    x, w = torch.tensor([[2.0**15]]), torch.tensor([[2.0**15]])
    b = torch.tensor([2.0**-21 + 2.0**-44], dtype=torch.float32)
    assert float(b[0]) == 2.0**-21 + 2.0**-44
    got = arith.linear(x.double(), w.double(), b, acc).item()
    assert got == 2.0**30 + 2.0**-20


def test_wide_saturating_accumulators_return_float32_inside_their_range():
    acc = parse_format("fixed<32,0>")
    got = arith.linear(torch.tensor([[2.0**15]]), torch.tensor([[2.0**16]]), None, acc).item()  # 2**31 saturates
    assert got == 2147483520.0 <= acc.max_value

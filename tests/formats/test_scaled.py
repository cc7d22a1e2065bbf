"""Block- and channel-scaled formats against independent implementations: an exact-arithmetic
reference written from the OCP MX v1.0 definition (section 6.3), torchao's MX and NVFP4
quantization, ml_dtypes' element casts, and PyTorch's per-channel fake quantization."""

from __future__ import annotations

import bisect
import functools
import math
import zlib
from fractions import Fraction

import numpy as np
import pytest
import torch

import quantscope as qs
from quantscope.formats import ScaledFormat
from quantscope.quantization import quantize_blocks

MX = ["mxfp8<e4m3>", "mxfp8<e5m2>", "mxfp6<e3m2>", "mxfp6<e2m3>", "mxfp4", "mxint8"]
RULES = ["floor", "ceil", "even", "rceil"]


# ------------------------------------------------------------------------ exact reference (OCP MX)
def _exp2(k: int) -> Fraction:
    return Fraction(2) ** k


@functools.lru_cache(maxsize=None)
def _values(fmt) -> tuple[Fraction, ...]:
    return tuple(Fraction(float(a)) for a in fmt.values().tolist())


def ref_element(v: Fraction, fmt, mode: str) -> Fraction:
    """v rounded onto the element format (saturating), from its list of values."""
    values = _values(fmt)
    v = min(max(v, values[0]), values[-1])
    below = values[bisect.bisect_right(values, v) - 1]
    above = values[bisect.bisect_left(values, v)]
    if below == above or mode == "floor" or (mode == "toward_zero" and v > 0):
        return below
    if mode == "toward_zero":
        return above
    d_below, d_above = v - below, above - v
    if d_below != d_above:
        return below if d_below < d_above else above
    step = above - below  # a tie: the value that is an even multiple of the spacing
    return below if (below / step).numerator % 2 == 0 and (below / step).denominator == 1 else above


def ref_shared_exponent(amax: Fraction, fmt: ScaledFormat) -> int:
    """OCP MX v1.0 section 6.3: floor(log2(max |V|)) - emax_elem (floor), and the named alternatives."""
    if amax == 0:
        return -127
    e = math.floor(math.log2(amax))
    while _exp2(e) > amax:
        e -= 1
    while _exp2(e + 1) <= amax:
        e += 1
    emax = fmt.element_emax
    if fmt.rule == "floor":
        k = e - emax
    elif fmt.rule == "ceil":
        k = e + (amax != _exp2(e)) - emax
    elif fmt.rule == "even":
        mbits = fmt.element.significand_bits - 1
        k = e + (amax / _exp2(e) >= 2 - _exp2(-(mbits + 1))) - emax
    else:
        k = -200
        while Fraction(fmt.qmax) * _exp2(k) < amax:
            k += 1
    return min(max(k, -127), 127)


def ref_block(values: list[float], fmt: ScaledFormat, mode: str) -> tuple[int, list[Fraction]]:
    exact = [Fraction(v) for v in values]
    k = ref_shared_exponent(max(abs(v) for v in exact), fmt)
    return k, [ref_element(v / _exp2(k), fmt.element, mode) * _exp2(k) for v in exact]


def _boundary_blocks(fmt: ScaledFormat, seed: int) -> torch.Tensor:
    """Blocks of 32 whose first value fixes the scale and whose others sit on every element value,
    every midpoint between neighbours and just beside them (float32 neighbours)."""
    g = torch.Generator().manual_seed(seed)
    vals = fmt.element.values().float()
    mids = (vals[1:] + vals[:-1]) / 2
    inner = torch.cat([vals, mids, torch.nextafter(mids, torch.tensor(math.inf)), torch.nextafter(mids, torch.tensor(-math.inf))])
    rows = []
    for k in (-9, -3, 0, 2, 5):
        scale = 2.0**k
        picks = inner[torch.randperm(len(inner), generator=g)]
        for start in range(0, len(picks), 31):
            lead = torch.tensor([float(fmt.qmax) * scale * float(torch.rand((), generator=g) * 0.99 + 0.01)])
            body = picks[start:start + 31] * scale
            rows.append(torch.cat([lead, body, torch.zeros(31 - len(body))]))
    return torch.stack(rows)


@pytest.mark.parametrize("mode", ["nearest", "floor", "toward_zero"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name", MX)
def test_mx_equals_the_exact_reference_on_every_element_boundary(name, rule, mode):
    fmt = qs.parse_format(f"{name}<rule={rule}>" if name in ("mxfp4", "mxint8") else name.replace(">", f",rule={rule}>"))
    x = _boundary_blocks(fmt, seed=len(name) + len(rule))
    b = quantize_blocks(x, fmt, rounding=mode)
    got = b.values().tolist()
    for row, out, scale in zip(x.tolist(), got, b.block_scales.reshape(-1).tolist()):
        k, want = ref_block(row, fmt, mode)
        assert scale == 2.0**k and out == [float(w) for w in want], (row[:3], k)


def test_blocks_with_nan_or_infinity_are_nan_and_partial_blocks_have_their_own_scale():
    x = torch.tensor([[1.0, math.nan] + [0.5] * 30 + [3.0, 0.25, 0.1]])  # 35 values: a block of 32 and one of 3
    y = qs.quantize(x, "mxfp4")
    assert torch.isnan(y[0, :32]).all() and y[0, 32:].tolist() == [3.0, 0.25, 0.0]  # scale 2^-1: 0.1 -> 0.2, below E2M1's 0.25 midpoint
    assert torch.isnan(qs.quantize(torch.tensor([math.inf] + [1.0] * 31), "mxfp8<e4m3>")).all()


def test_the_axis_chooses_where_blocks_run():
    x = torch.randn(64, 48)
    assert torch.equal(qs.quantize(x, "mxfp4", axis=0), qs.quantize(x.t().contiguous(), "mxfp4").t())
    assert quantize_blocks(x, "int8<channel>", axis=1).scales.shape == (64, 1)
    assert quantize_blocks(x, "int8<tensor>").scales.shape == (1, 1)


# ---------------------------------------------------------------------------------- torchao
torchao_mx = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor", reason="torchao is a dev dependency (pip install -e '.[dev]')")


def _torchao_elements(data_lp: torch.Tensor, elem) -> torch.Tensor:
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32, f6_e2m3_unpacked_to_f32, f6_e3m2_unpacked_to_f32, unpack_uint4

    if elem == torch.float4_e2m1fn_x2:
        return f4_unpacked_to_f32(unpack_uint4(data_lp))
    if elem == "fp6_e2m3":
        return f6_e2m3_unpacked_to_f32(data_lp)
    if elem == "fp6_e3m2":
        return f6_e3m2_unpacked_to_f32(data_lp)
    return data_lp.float()


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("name,elem", [("mxfp8<e4m3>", torch.float8_e4m3fn), ("mxfp8<e5m2>", torch.float8_e5m2), ("mxfp6<e2m3>", "fp6_e2m3"),
                                       ("mxfp6<e3m2>", "fp6_e3m2"), ("mxfp4", torch.float4_e2m1fn_x2)])
def test_mx_equals_torchao_on_a_million_values(name, elem, rule):
    """Scales and elements equal torchao's to_mx for every rule, on 2**20 values spanning 2**-30 to
    2**30 (torchao clamps a block's float scale to 2**-126, so blocks smaller than that are left out)."""
    from torchao.prototype.mx_formats.config import ScaleCalculationMode

    g = torch.Generator().manual_seed(zlib.crc32(f"{name}{rule}".encode()))
    x = torch.randn(2**15, 32, generator=g) * torch.exp2(torch.randint(-30, 30, (2**15, 1), generator=g).float())
    fmt = qs.parse_format(f"{name}<rule={rule}>" if name == "mxfp4" else name.replace(">", f",rule={rule}>"))
    mode = {"floor": ScaleCalculationMode.FLOOR, "ceil": ScaleCalculationMode.CEIL, "even": ScaleCalculationMode.EVEN,
            "rceil": ScaleCalculationMode.RCEIL}[rule]
    scale, data = torchao_mx.to_mx(x, elem, 32, mode)
    b = quantize_blocks(x, fmt)
    assert torch.equal(scale.view(torch.uint8).to(torch.int64) - 127, torch.log2(b.block_scales.reshape(-1, 1)).to(torch.int64).reshape(scale.shape))
    assert torch.equal(_torchao_elements(data, elem).reshape(-1).double(), b.elements.reshape(-1))


@pytest.mark.parametrize("tensor_scale", [True, False])
def test_nvfp4_with_reciprocal_scaling_equals_torchao(tensor_scale):
    """torchao's NVFP4 forms elements as float32 x * (1 / scale) and clamps scales to E4M3's smallest
    normal value: quantscope's nvfp4<scaling=reciprocal,scale_min=normal>."""
    from torchao.prototype.mx_formats.kernels import f4_unpacked_to_f32, unpack_uint4
    from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize, per_tensor_amax_to_scale

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2**14, 64, generator=g) * torch.exp2(torch.randint(-8, 8, (2**14, 1), generator=g).float())
    per_tensor = per_tensor_amax_to_scale(x.abs().max()) if tensor_scale else None
    scales, data = nvfp4_quantize(x, 16, per_tensor)
    fmt = qs.parse_format(f"nvfp4<scaling=reciprocal,scale_min=normal{'' if tensor_scale else ',tensor_scale=off'}>")
    b = quantize_blocks(x, fmt)
    assert torch.equal(scales.float().reshape(-1).double(), b.block_scales.reshape(-1))
    assert torch.equal(f4_unpacked_to_f32(unpack_uint4(data)).reshape(-1).double(), b.elements.reshape(-1))
    if tensor_scale:
        assert b.tensor_scale == float(per_tensor)


def test_nvfp4_exact_scaling_rounds_once_and_differs_from_reciprocal_where_that_rounds_twice():
    """Blocks whose scale is 0.875 (amax 5.25) and whose other values sit on E2M1 midpoints times the
    scale and their float32 neighbours: exact scaling equals the exact reference; float32 x * (1/s)
    moves some of them across the midpoint."""
    mids = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], dtype=torch.float64) * 0.875
    near = torch.cat([mids.float(), torch.nextafter(mids.float(), torch.tensor(9.0)), torch.nextafter(mids.float(), torch.tensor(0.0))])
    rows = torch.cat([torch.full((near.numel(), 1), 5.25), near[:, None].repeat(1, 15)], 1)
    rows = torch.cat([rows, -rows])
    exact, recip = quantize_blocks(rows, "nvfp4<tensor_scale=off>"), quantize_blocks(rows, "nvfp4<tensor_scale=off,scaling=reciprocal>")
    assert torch.equal(exact.scales, recip.scales) and set(exact.scales.reshape(-1).tolist()) == {0.875}
    e2m1 = qs.parse_format("float<2,1,special=none>")
    want = [[float(ref_element(Fraction(v) / Fraction(0.875), e2m1, "nearest")) for v in row] for row in rows.double().tolist()]
    assert exact.elements.reshape(rows.shape).tolist() == want
    assert 0 < int((exact.elements != recip.elements).sum()) < exact.elements.numel()


# --------------------------------------------------------------------------- ml_dtypes elements
@pytest.mark.parametrize("name,dtype", [("e4m3fn", "float8_e4m3fn"), ("e5m2", "float8_e5m2"), ("float<3,2,special=none>", "float6_e3m2fn"),
                                        ("float<2,3,special=none>", "float6_e2m3fn"), ("float<2,1,special=none>", "float4_e2m1fn")])
def test_element_formats_equal_ml_dtypes_casts(name, dtype):
    """Every value, every midpoint and its float32 neighbours, and a million random values inside
    the element's range: quantscope's rounding equals ml_dtypes' cast."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    fmt = qs.parse_format(name)
    vals = fmt.values().float()
    mids = (vals[1:] + vals[:-1]) / 2
    g = torch.Generator().manual_seed(5)
    x = torch.cat([vals, mids, torch.nextafter(mids, torch.tensor(math.inf)), torch.nextafter(mids, torch.tensor(-math.inf)),
                   (torch.rand(2**20, generator=g) * 2 - 1) * fmt.max_value])
    want = x.numpy().astype(getattr(ml_dtypes, dtype)).astype(np.float32)
    assert np.array_equal(qs.quantize(x, fmt).numpy(), want)


def test_int8_per_channel_with_reciprocal_scaling_equals_pytorch_fake_quantization():
    g = torch.Generator().manual_seed(6)
    w = torch.randn(64, 300, generator=g) * torch.exp2(torch.randint(-6, 6, (64, 1), generator=g).float())
    b = quantize_blocks(w, "int8<channel,scaling=reciprocal>")
    scale = b.block_scales.reshape(-1).float()
    want = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(64, dtype=torch.int32), 0, -127, 127)
    assert torch.equal(qs.quantize(w, "int8<channel,scaling=reciprocal>"), want)
    assert torch.equal(scale, (w.abs().amax(1) / 127).float())


def test_formats_state_their_storage_and_round_trip():
    assert [qs.parse_format(f).bits_per_value for f in ("mxfp4", "mxfp8<e4m3>", "nvfp4", "int4<group=128>", "bfp<8,block=16>")] == [
        4.25, 8.25, 4.5, 4.25, 8.5]
    for text in ("mxfp4", "mxfp6<e2m3,rule=even>", "mxint8<block=16>", "nvfp4<tensor_scale=off,scaling=reciprocal>", "int4<group=32,scale=e8m0>",
                 "nvfp4<scale_min=normal>", "int4<group=64,scale=e4m3,scale_min=normal>",
                 "int8<channel>", "int8<tensor>", "bfp<6,block=8>"):
        assert str(qs.parse_format(text)) == text
    with pytest.raises(ValueError, match="depend on each block's scale"):
        qs.parse_format("mxfp4").values()
    assert qs.parse_format("mxfp4").block_values(0.5).tolist()[-1] == 3.0


@pytest.mark.parametrize("name", ["mxfp8<e4m3>", "mxfp6<e2m3>", "mxfp4", "mxint8", "nvfp4", "nvfp4<scaling=reciprocal>", "int4<group=128>",
                                  "int8<channel>", "int8<tensor>", "int4<group=32,scale=e8m0>", "bfp<8,block=16>"])
@pytest.mark.parametrize("mode", ["nearest", "floor", "toward_zero"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quantize_equals_the_block_decomposition(name, mode, dtype):
    """quantize's fast path (in the input's dtype, or float64 chunks) gives quantize_blocks' values,
    on values spanning 2**-140 to 2**120, NaN and infinite blocks, a ragged last block, every axis."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}{mode}".encode()))
    x = (torch.randn(40, 3, 150, generator=g) * torch.exp2(torch.randint(-140, 120, (40, 3, 1), generator=g).float())).to(dtype)
    x[0, 0, 5], x[1, 2, 149] = math.nan, -math.inf
    for axis in (2, 0, 1):
        want = quantize_blocks(x, name, axis, mode).values(dtype)
        got = qs.quantize(x, name, mode, axis=axis)
        assert got.dtype == dtype and torch.equal(torch.nan_to_num(got, 7.0), torch.nan_to_num(want, 7.0)), axis
        assert torch.equal(torch.isnan(got), torch.isnan(want))


@pytest.mark.parametrize("name", ["int8<channel>", "nvfp4", "mxfp4", "int4<group=32>"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quantize_leaves_its_input_alone(name, dtype):
    x = torch.randn(8, 64, dtype=dtype)
    before = x.clone()
    qs.quantize(x, name)
    quantize_blocks(x, name)
    assert torch.equal(x, before)

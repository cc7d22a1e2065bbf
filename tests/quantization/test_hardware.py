"""Bit-exact agreement with PyTorch's hardware float dtypes on 10**6 random inputs plus every midpoint."""

from __future__ import annotations

import math

import pytest
import torch

from quantscope import MiniFloat, parse_format, quantize

N_RANDOM = 1_000_000


def _random_float32(n: int, seed: int) -> torch.Tensor:
    """Random bit patterns: every exponent, subnormals, infinities and NaNs, both signs."""
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(-(2**31), 2**31, (n,), dtype=torch.int64, generator=g).to(torch.int32)
    return bits.view(torch.float32)


def _all_codes(dtype: torch.dtype) -> torch.Tensor:
    """Every finite value of an 8- or 16-bit float dtype, sorted, as float64."""
    nbits = torch.finfo(dtype).bits
    int_dtype = torch.int16 if nbits == 16 else torch.uint8
    lo, hi = (-(2**15), 2**15) if nbits == 16 else (0, 256)
    codes = torch.arange(lo, hi, dtype=torch.int64).to(int_dtype).view(dtype).double()
    return torch.unique(codes[torch.isfinite(codes)])


def _midpoints(dtype: torch.dtype) -> torch.Tensor:
    """Midpoints of neighbouring finite values and their float32 neighbours (exact in float32)."""
    v = _all_codes(dtype)
    mids = ((v[:-1] + v[1:]) / 2).float()
    assert torch.equal(mids.double(), (v[:-1] + v[1:]) / 2), "midpoints must be exact in float32"
    up = torch.nextafter(mids, torch.full_like(mids, float("inf")))
    down = torch.nextafter(mids, torch.full_like(mids, float("-inf")))
    return torch.cat([mids, up, down, v.float()])


def _inputs(dtype: torch.dtype, seed: int) -> torch.Tensor:
    wide = _random_float32(N_RANDOM, seed)
    # the same number of inputs inside the format's own range, where the rounding work happens
    g = torch.Generator().manual_seed(seed + 1)
    log_top = math.log(torch.finfo(dtype).max) + 0.1
    local = torch.exp(torch.empty(N_RANDOM // 4, dtype=torch.float64).uniform_(-110, log_top, generator=g))
    local = local * torch.where(torch.rand(local.shape, generator=g) < 0.5, -1.0, 1.0)
    return torch.cat([wide, local.float(), _midpoints(dtype)])


def _assert_bit_identical(got: torch.Tensor, want: torch.Tensor, x: torch.Tensor, what: str) -> None:
    nan_got, nan_want = torch.isnan(got), torch.isnan(want)
    assert torch.equal(nan_got, nan_want), f"{what}: NaN placement differs, e.g. x={x[nan_got != nan_want][:5]}"
    keep = ~nan_want
    same = got[keep].view(torch.int32) == want[keep].view(torch.int32)  # compares the sign of zero too
    if not bool(same.all()):
        bad = torch.nonzero(~same)[:5, 0]
        raise AssertionError(f"{what}: {int((~same).sum())} differ, x={x[keep][bad]} got={got[keep][bad]} want={want[keep][bad]}")


CASES = [
    ("float<5,10,overflow=inf>", torch.float16),
    ("float<8,7,overflow=inf>", torch.bfloat16),
    ("float<5,2,overflow=inf>", torch.float8_e5m2),
]


@pytest.mark.parametrize("fmt,dtype", CASES, ids=[c[0] for c in CASES])
def test_ieee_formats_equal_hardware_conversion(fmt, dtype):
    x = _inputs(dtype, seed=1)
    assert x.numel() > N_RANDOM
    _assert_bit_identical(quantize(x, fmt), x.to(dtype).float(), x, fmt)


@pytest.mark.parametrize("alias,dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16), ("e5m2", torch.float8_e5m2)])
def test_saturating_aliases_match_hardware_in_range_and_clip_outside(alias, dtype):
    x = _inputs(dtype, seed=2)
    fmt = parse_format(alias)
    got = quantize(x, fmt)
    want = x.to(dtype).float()
    finite = torch.isfinite(want) | torch.isnan(x)
    _assert_bit_identical(got[finite], want[finite], x[finite], alias)
    over = ~finite
    assert over.any()
    assert torch.equal(got[over], torch.sign(x[over]) * fmt.max_value)


def test_e4m3fn_matches_hardware_and_saturates():
    dtype = torch.float8_e4m3fn
    fmt = parse_format("e4m3fn")
    assert fmt == MiniFloat(4, 3, special="fn") and fmt.max_value == 448.0
    x = _inputs(dtype, seed=3)
    got = quantize(x, fmt)
    # PyTorch's conversion turns values past 464 (448 + half a step) into NaN; we saturate.
    in_range = (x.abs() < 464) | torch.isnan(x)
    _assert_bit_identical(got[in_range], x[in_range].to(dtype).float(), x[in_range], "e4m3fn")
    out = x.abs() >= 464
    assert torch.equal(got[out], torch.sign(x[out]) * 448.0)


def test_float8_8_23_is_float32_itself():
    x = _random_float32(200_000, seed=4)
    _assert_bit_identical(quantize(x, "float<8,23,overflow=inf>"), x, x, "float<8,23>")

"""Property tests against the exact reference (tests/exact.py): random formats (fixed point up to
64 bits with fraction bits far outside [0, B], unsigned and wrapping; minifloats with any bias and
special-value convention; powers of two), float32 and float64 inputs, every rounding mode, and
adversarial values (boundaries, midpoints and their neighbours, +-0, subnormals, max + half an
ulp, huge finite values, infinities, NaN); and accumulator arithmetic (signed and unsigned,
saturating and wrapping, fast path and sequential path, with bias)."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import exact
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quantscope import Binary, FixedPoint, MiniFloat, PowerOfTwo, arith, parse_format, quantize

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
MODES = ["nearest", "floor", "toward_zero"]


@st.composite
def fixed_formats(draw):
    bits = draw(st.integers(1, 64))
    signed = draw(st.booleans())
    wrap = draw(st.booleans()) and bits <= 53
    frac = draw(st.integers(-150, 170))
    try:
        return FixedPoint(bits, frac, signed, "wrap" if wrap else "saturate")
    except ValueError:
        assume(False)


@st.composite
def minifloat_formats(draw):
    exp = draw(st.integers(1, 8))
    man = draw(st.integers(0, 23))
    special = draw(st.sampled_from(["ieee", "fn", "none"]))
    default = 2 ** (exp - 1) - 1
    bias = draw(st.one_of(st.just(default), st.integers(default - 130, default + 130)))
    overflow = "inf" if special == "ieee" and draw(st.booleans()) else "saturate"
    try:
        return MiniFloat(exp, man, bias, draw(st.booleans()), special, overflow)
    except ValueError:
        assume(False)


@st.composite
def pow2_formats(draw):
    bits = draw(st.integers(2, 8))
    try:
        return PowerOfTwo(bits, draw(st.integers(-120, 127)))
    except ValueError:
        assume(False)


FORMATS = st.one_of(fixed_formats(), minifloat_formats(), pow2_formats())


def _grid_points(fmt) -> list[Fraction]:
    """Values around which rounding decisions happen: boundaries and spots on the grid."""
    pts = [Fraction(fmt.max_value), Fraction(fmt.min_value), Fraction(fmt.min_positive), Fraction(0)]
    if isinstance(fmt, FixedPoint):
        step = Fraction(2) ** -fmt.frac
        pts += [k * step for k in (1, 2, 3, fmt.k_max - 1, fmt.k_min + 1, 2**23 + 1, 2**24 + 1, 2**25 + 3) if fmt.k_min <= k <= fmt.k_max]
    else:
        pts += [Fraction(fmt.min_positive) * m for m in (1, 3, 5)] + [Fraction(fmt.max_value) / 2, Fraction(fmt.max_value) * 3 / 4]
    return pts


@st.composite
def adversarial(draw, fmt, dtype):
    """An input value that sits where rounding is hard, exactly representable in `dtype`."""
    info = np.finfo(np.float32 if dtype == torch.float32 else np.float64)
    kind = draw(st.sampled_from(["grid", "mid", "mid-", "mid+", "over", "special", "random"]))
    if kind == "special":
        return draw(st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, float(info.max), -float(info.max),
                                     float(info.smallest_subnormal), -float(info.smallest_subnormal), float(info.tiny) * 3]))
    if kind == "random":
        return draw(st.floats(width=32 if dtype == torch.float32 else 64, allow_nan=False))
    p = draw(st.sampled_from(_grid_points(fmt)))
    sign = draw(st.sampled_from([1, -1]))
    if kind == "grid":
        v = p
    elif kind == "over":
        v = Fraction(fmt.max_value) * draw(st.sampled_from([Fraction(9, 8), Fraction(2), Fraction(2**20)]))
    else:  # halfway to the next grid value, and its neighbours in the input dtype
        step = Fraction(fmt.min_positive) if isinstance(fmt, FixedPoint) else max(Fraction(fmt.min_positive), p * Fraction(1, 2 ** (fmt.man if isinstance(fmt, MiniFloat) else 0) + 1))
        v = p + step / 2
    with np.errstate(over="ignore"):  # values past the dtype become inf: inputs like any other
        x = np.array(float(sign * v), dtype=info.dtype)
    if kind == "mid-":
        x = np.nextafter(x, info.dtype.type(-math.inf))
    elif kind == "mid+":
        x = np.nextafter(x, info.dtype.type(math.inf))
    return float(x)


def _same(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1, got) == math.copysign(1, want)


def _check(fmt, xs: list[float], dtype, mode: str) -> None:
    t = torch.tensor(xs, dtype=dtype)
    got = quantize(t, fmt, mode)
    assert got.dtype == dtype
    for x, g in zip(xs, got.tolist()):
        want = exact.expected(x, fmt, mode, float32=dtype == torch.float32)
        assert _same(g, want), f"{fmt} {dtype} {mode}: quantize({x!r}) = {g!r}, expected {want!r}"


def _refused(fmt, dtype) -> bool:
    """Wrapping codes wider than float32's significand cannot live in a float32 tensor."""
    return dtype == torch.float32 and isinstance(fmt, FixedPoint) and fmt.overflow == "wrap" and fmt.significand_bits > 24


@SETTINGS
@given(st.data(), FORMATS, st.sampled_from([torch.float32, torch.float64]), st.sampled_from(MODES))
def test_quantize_equals_the_exact_reference(data, fmt, dtype, mode):
    if _refused(fmt, dtype):
        with pytest.raises(ValueError, match="float32"):
            quantize(torch.zeros(1, dtype=dtype), fmt, mode)
        return
    xs = [data.draw(adversarial(fmt, dtype)) for _ in range(16)]
    _check(fmt, xs, dtype, mode)


@SETTINGS
@given(st.data(), FORMATS, st.sampled_from([torch.float32, torch.float64]))
def test_stochastic_rounding_picks_one_of_the_two_neighbours(data, fmt, dtype):
    assume(not _refused(fmt, dtype))
    xs = [data.draw(adversarial(fmt, dtype)) for _ in range(16)]
    got = quantize(torch.tensor(xs, dtype=dtype), fmt, "stochastic", generator=torch.Generator().manual_seed(data.draw(st.integers(0, 2**31))))
    for x, g in zip(xs, got.tolist()):
        if math.isnan(x) or math.isinf(x):
            assert _same(g, exact.expected(x, fmt, "nearest", dtype == torch.float32)), (str(fmt), x, g)
            continue
        down, up = exact.neighbours(x, fmt, dtype == torch.float32)
        assert _same(g, down) or _same(g, up), f"{fmt} {dtype}: stochastic({x!r}) = {g!r}, neighbours {down!r}, {up!r}"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_binary_scales_are_float32_values(data):
    s = data.draw(st.floats(min_value=1e-30, max_value=1e30))
    if float(np.float32(s)) != s:
        with pytest.raises(ValueError, match="not a float32 value"):
            Binary(s)
        return
    fmt = Binary(s)
    x = torch.tensor([-3.0, 0.0, 2.0, math.nan])
    out = quantize(x, fmt).tolist()
    assert out[:3] == [-s, s, s] and math.isnan(out[3])
    assert set(quantize(x[:3], fmt, "stochastic").tolist()) <= {-s, s}


# ------------------------------------------------------------------------ accumulators
@st.composite
def accumulators(draw):
    if draw(st.booleans()):
        return draw(minifloat_formats().filter(lambda f: f.special == "ieee" and f.overflow == "saturate"))
    bits = draw(st.integers(2, 53))
    try:
        return FixedPoint(bits, draw(st.integers(-4, 40)), draw(st.booleans()), draw(st.sampled_from(["saturate", "wrap"])))
    except ValueError:
        assume(False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data(), accumulators(), st.integers(1, 12), st.booleans(), st.sampled_from(["nearest", "floor", "toward_zero"]))
def test_accumulators_equal_the_exact_sequential_reference(data, acc, k, with_bias, mode):
    if acc.accumulator_error is not None:
        with pytest.raises(ValueError, match=re.escape(acc.accumulator_error)):
            arith.linear(torch.ones(1, k), torch.ones(1, k), None, acc)
        return
    wf = FixedPoint(data.draw(st.integers(2, 12)), data.draw(st.integers(0, 10)))
    xf = FixedPoint(data.draw(st.integers(2, 12)), data.draw(st.integers(0, 10)), signed=data.draw(st.booleans()))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))
    x = quantize(torch.randn(3, k, generator=gen) * 2 ** data.draw(st.integers(-4, 8)), xf)
    w = quantize(torch.randn(4, k, generator=gen) * 2 ** data.draw(st.integers(-4, 8)), wf)
    b = quantize(torch.randn(4, generator=gen) * 2 ** data.draw(st.integers(-30, 20)), "float32") if with_bias else None
    hints = data.draw(st.sampled_from([{}, {"weight_format": wf, "data_format": xf}]))  # sequential or fast path
    got = arith.linear(x, w, b, acc, rounding=mode, **hints)
    for n in range(3):
        for o in range(4):
            want = exact.to_float32(exact.dot(w[o].tolist(), x[n].tolist(), acc, None if b is None else b[o], mode), acc)
            assert got[n, o].item() == want, (str(acc), mode, hints != {}, n, o, got[n, o].item(), want)


SUMS_THE_WORK_DTYPE_ROUNDS = [
    # float16 accumulator, float16 operands: the kernel works in float32, where 1024 - 2**-24 is 1024
    ("float<5,10>", [1024.0, 2.0**-12], [1.0, -(2.0**-12)], "float<5,10>", {"nearest": 1024.0, "floor": 1023.5, "toward_zero": 1023.5}),
    # float32-like accumulator: the kernel works in float64, where 2**60 - 2**-60 is 2**60
    ("float<8,23>", [2.0**60, 2.0**-60], [1.0, -1.0], None, {"nearest": 2.0**60, "floor": 2.0**60 - 2.0**36, "toward_zero": 2.0**60 - 2.0**36}),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("acc,xs,ws,operands,want", SUMS_THE_WORK_DTYPE_ROUNDS)
def test_directed_rounding_of_sums_the_work_dtype_cannot_hold(acc, xs, ws, operands, want, mode):
    """Each sum rounds once, from its exact value, in every mode: floor and toward zero of the
    exact sum, not of the sum the work dtype holds."""
    hints = {} if operands is None else {"weight_format": parse_format(operands), "data_format": parse_format(operands)}
    got = arith.linear(torch.tensor([xs]), torch.tensor([ws]), None, acc, rounding=mode, **hints)
    assert got.item() == want[mode] == float(exact.dot(ws, xs, parse_format(acc), None, mode))


@pytest.mark.parametrize("mode,want", [("nearest", 1.0), ("floor", 0.0), ("toward_zero", 0.0)])
def test_sum_with_a_bias_in_a_51_bit_wrapping_accumulator(mode, want):
    """(2**51 - 2) + 2.98 wraps to 1 (nearest) or 0 (floor, toward zero) in ufixed<51,0>: the sum
    needs 52 integer bits, so a float64 sum rounded to odd (2 spare bits) gave 0 under nearest."""
    acc = parse_format("ufixed<51,0,overflow=wrap>")
    got = arith.linear(torch.tensor([[2.0, 0.0]]), torch.tensor([[-1.0, 1.0]]), torch.tensor([2.984917163848877]), acc, rounding=mode)
    assert got.item() == want == float(exact.dot([-1.0, 1.0], [2.0, 0.0], acc, 2.984917163848877, mode))

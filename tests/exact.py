"""An exact reference for rounding and accumulation, in Python integers and Fractions.

Written from the documented policies (docs/formats.md) without any of the kernels' code or tricks:
every value is an exact rational, every rounding is decided by comparing rationals.
"""

from __future__ import annotations

import math
from fractions import Fraction

from quantscope import Binary, FixedPoint, Float32, MiniFloat, PowerOfTwo

F32_MAX = Fraction((2**24 - 1) * 2**104)


def _round_int(v: Fraction, mode: str) -> int:
    """v rounded to an integer: nearest (ties to even), floor, ceil or toward zero."""
    if mode == "floor":
        return math.floor(v)
    if mode == "ceil":
        return math.ceil(v)
    if mode == "toward_zero":
        return math.trunc(v)
    return round(v)  # Python rounds Fractions half to even


def _exponent(a: Fraction) -> int:
    """floor(log2 a) for a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > a else e


def round_grid(v: Fraction, man: int, emin: int, lo: Fraction, hi: Fraction, mode: str, subnormals: bool = True) -> Fraction:
    """Round onto a binary float grid (man mantissa bits, normals from 2**emin) clamped to [lo, hi]."""
    v = min(max(v, lo), hi)
    if v == 0:
        return Fraction(0)
    e = max(_exponent(abs(v)), emin)
    quantum = Fraction(2) ** (e - man) if subnormals or abs(v) >= Fraction(2) ** emin else Fraction(2) ** emin
    return min(max(_round_int(v / quantum, mode) * quantum, lo), hi)


def _magnitude_bits(fmt: FixedPoint) -> int:
    return fmt.bits - 1 if fmt.signed else fmt.bits


def _subset(fmt: FixedPoint, p: int) -> tuple[int, int, Fraction, Fraction]:
    """A fixed-point grid's values that a float with p significant bits can hold, as a float
    grid: (man, emin, lo, hi)."""
    top = fmt.k_max
    drop = max(top.bit_length() - p, 0)
    hi = Fraction(top >> drop << drop) / Fraction(2) ** fmt.frac
    lo = Fraction(fmt.k_min) / Fraction(2) ** fmt.frac
    return p - 1, p - 1 - fmt.frac, lo, hi


def _float32_subset(fmt: FixedPoint) -> tuple[int, int, Fraction, Fraction]:
    return _subset(fmt, 24)


def round_fixed(v: Fraction, fmt: FixedPoint, mode: str, float32: bool) -> Fraction:
    """Nearest/floor/toward-zero onto fixed point; a grid wider than the output's significand
    (24 bits for float32, 53 for float64) rounds onto the values of the grid the output holds."""
    scale = Fraction(2) ** fmt.frac
    if fmt.overflow == "wrap":
        k = _round_int(v * scale, mode)
        k = (k - fmt.k_min) % 2**fmt.bits + fmt.k_min
        return Fraction(k) / scale
    p = 24 if float32 else 53
    if _magnitude_bits(fmt) > p:
        man, emin, lo, hi = _subset(fmt, p)
        return round_grid(v, man, emin, lo, hi, mode)
    k = min(max(_round_int(v * scale, mode), fmt.k_min), fmt.k_max)
    return Fraction(k) / scale


def _finite(v: Fraction, fmt, mode: str, float32: bool) -> Fraction:
    """v rounded onto the format's finite values, saturating at both ends."""
    if isinstance(fmt, FixedPoint):
        return round_fixed(v, fmt, mode, float32)
    if isinstance(fmt, MiniFloat):
        hi = Fraction(fmt.max_value)
        return round_grid(v, fmt.man, fmt.emin, -hi, hi, mode, fmt.subnormals)
    if isinstance(fmt, PowerOfTwo):
        hi = Fraction(fmt.max_value)
        return round_grid(v, 0, fmt.emin, -hi, hi, mode)
    assert isinstance(fmt, Float32)
    return round_grid(v, 23, -126, -F32_MAX, F32_MAX, mode)


def _signed(r: Fraction, x: float) -> float:
    return math.copysign(0.0, x) if r == 0 else float(r)


def expected(x: float, fmt, mode: str, float32: bool) -> float:
    """The documented result of quantizing the float `x` (exactly) onto `fmt`, as a float, with
    the sign of a zero result taken from x (NaN stays NaN). Formats with infinities overflow the
    IEEE 754 way for nearest and floor."""
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return _infinite(x, fmt, float32)
    if isinstance(fmt, Binary):
        return fmt.magnitude if x >= 0 else -fmt.magnitude
    v = Fraction(x)
    top = {MiniFloat: lambda f: (f.overflow == "inf", Fraction(f.max_value), Fraction(2) ** (f.emax - f.man - 1)),
           Float32: lambda f: (True, F32_MAX, Fraction(2) ** 103)}.get(type(fmt))
    if top is not None:
        has_inf, hi, half_ulp = top(fmt)
        if has_inf and mode == "nearest" and abs(v) >= hi + half_ulp:
            return math.copysign(math.inf, x)
        if has_inf and mode == "floor" and v < -hi:
            return -math.inf
    return _signed(_finite(v, fmt, mode, float32), x)


def neighbours(x: float, fmt, float32: bool) -> tuple[float, float]:
    """The two values stochastic rounding may give a finite x: the saturating floor and ceiling
    (stochastic rounding never overflows a finite value to infinity)."""
    if isinstance(fmt, Binary):
        return -fmt.magnitude, fmt.magnitude
    v = Fraction(x)
    return _signed(_finite(v, fmt, "floor", float32), x), _signed(_finite(v, fmt, "ceil", float32), x)


def _infinite(x: float, fmt, float32: bool) -> float:
    if isinstance(fmt, Binary):
        return fmt.magnitude if x > 0 else -fmt.magnitude
    if isinstance(fmt, FixedPoint):
        if fmt.overflow == "wrap":
            return math.nan
        p = 24 if float32 else 53
        if _magnitude_bits(fmt) > p:
            _, _, lo, hi = _subset(fmt, p)
            return _signed(hi if x > 0 else lo, x)
        return _signed(Fraction(fmt.max_value) if x > 0 else Fraction(fmt.min_value), x)
    if isinstance(fmt, Float32) or (isinstance(fmt, MiniFloat) and fmt.overflow == "inf"):
        return x
    return math.copysign(fmt.max_value, x)


def dot(ws, xs, acc, bias=None, mode: str = "nearest") -> Fraction:
    """acc = q(acc + q(w x)) over the terms in order, then q(acc + bias), exactly; q rounds the
    exact value once (nearest with ties to even, floor or toward zero)."""
    def q(v: Fraction) -> Fraction:
        if isinstance(acc, FixedPoint):
            return round_fixed(v, acc, mode, float32=False)
        hi = Fraction(acc.max_value)
        return round_grid(v, acc.man, acc.emin, -hi, hi, mode, acc.subnormals)

    total = Fraction(0)
    for w, x in zip(ws, xs):
        total = q(total + q(Fraction(float(w)) * Fraction(float(x))))
    return total if bias is None else q(total + Fraction(float(bias)))


def to_float32(v: Fraction, acc) -> float:
    """An accumulator's exact value as the documented float32 output: itself when float32 holds
    it, else (fixed point wider than 24 bits) rounded onto the grid's float32 values."""
    if isinstance(acc, FixedPoint) and _magnitude_bits(acc) > 24:
        man, emin, lo, hi = _float32_subset(acc)
        return float(round_grid(v, man, emin, lo, hi, "nearest"))
    return float(v)

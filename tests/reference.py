"""Independent reference rounding: search the enumerated values of a format, in float64 NumPy.

Written without the kernels' tricks: the answer is looked up among `fmt.values()`, so a kernel bug
cannot hide in a shared helper.
"""

from __future__ import annotations

import math

import numpy as np

from quantscope import FixedPoint, Format, MiniFloat


def _tie_break(a: float, b: float) -> float:
    """Between tied neighbours a < b pick the one that is an even multiple of their spacing."""
    spacing = b - a
    qa = a / spacing
    assert qa == math.floor(qa), (a, b)
    return a if int(qa) % 2 == 0 else b


def round_to_values(x: np.ndarray, values: np.ndarray, rounding: str, inf_at: float | None = None) -> np.ndarray:
    """Round each x onto the sorted `values` (saturating at the ends).

    With `inf_at`, the format overflows to infinity the IEEE way: +-inf_at (the first power of
    two past the largest finite value) stands in for +-inf as a neighbour, then becomes inf.
    """
    vals = np.asarray(values, dtype=np.float64)
    if inf_at is not None:
        vals = np.concatenate([[-inf_at], vals, [inf_at]])
    out = np.empty_like(x)
    for i, v in enumerate(x):
        if math.isnan(v):
            out[i] = math.nan
            continue
        if inf_at is not None and math.isinf(v):
            out[i] = v
            continue
        c = min(max(v, vals[0]), vals[-1])
        j = int(np.searchsorted(vals, c, side="left"))
        if vals[j] == c:
            r = c
        else:
            a, b = vals[j - 1], vals[j]
            if rounding == "nearest":
                da, db = c - a, b - c
                r = a if da < db else b if db < da else _tie_break(a, b)
            elif rounding == "floor":
                r = a
            elif rounding == "toward_zero":
                r = a if c > 0 else b
            else:
                raise ValueError(rounding)
        if inf_at is not None and abs(r) == inf_at:
            if rounding == "nearest" or (rounding == "floor" and r < 0):
                r = math.copysign(math.inf, r)
            else:
                r = math.copysign(vals[-2], r)
        out[i] = r
    return out


def reference_quantize(x: np.ndarray, fmt: Format, rounding: str) -> np.ndarray:
    """What `quantize(x, fmt, rounding)` must return, by lookup in `fmt.values()`."""
    if isinstance(fmt, FixedPoint) and fmt.overflow == "wrap":
        return _reference_wrap(x, fmt, rounding)
    inf_at = None
    if isinstance(fmt, MiniFloat) and fmt.overflow == "inf":
        inf_at = math.ldexp(1.0, fmt.emax + 1)
    return round_to_values(x, fmt.values().numpy(), rounding, inf_at)


def _reference_wrap(x: np.ndarray, fmt: FixedPoint, rounding: str) -> np.ndarray:
    """Round onto the unbounded integer grid, then reduce the integer modulo 2**bits."""
    out = np.empty_like(x)
    for i, v in enumerate(x):
        if not math.isfinite(v):
            out[i] = math.nan
            continue
        t = v * 2.0**fmt.frac  # exact: power-of-two scaling of a float32 value in float64
        lo = math.floor(t)
        if rounding == "nearest":
            k = lo if t - lo < 0.5 else lo + 1 if t - lo > 0.5 else (lo if lo % 2 == 0 else lo + 1)
        elif rounding == "floor":
            k = lo
        else:
            k = math.trunc(t)
        k = (k - fmt.k_min) % 2**fmt.bits + fmt.k_min
        out[i] = math.ldexp(k, -fmt.frac)
    return out

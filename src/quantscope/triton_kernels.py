"""Triton kernels for CUDA tensors: rounding onto a grid, and dot products that round after every
multiply and every add.

They mirror the C kernels of _native.c (and so the PyTorch kernels of quantization.py and
arith/kernel.py) operation for operation in IEEE arithmetic, so every path gives the same bits:
round-to-nearest-even is the exact `(|t| + 2**p) - 2**p`, floor, ceil and truncation are exact,
and kernels launch with `enable_fp_fusion=False` (a fused multiply-add would skip a rounding).
Grids and rounding modes are compile-time constants, one specialization each, like the C switch.

Imported only when a CUDA tensor is rounded (quantscope.native dispatches); with the environment
variable TRITON_INTERPRET=1 set before the import, Triton's interpreter runs the same kernels on
CPU tensors, which is how the test suite checks them on a machine without a GPU.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

__all__ = ["quantize", "dot", "VERSION"]

VERSION: str = triton.__version__
_MODES = {"nearest": 0, "floor": 1, "toward_zero": 2, "stochastic": 3}
_BLOCK = 1024  # values per program of quantize
_TILE = 32  # rows and columns per program of dot


# ------------------------------------------------------------------ one value (mirrors _native.c)
@triton.jit
def _as_int(x, F64: tl.constexpr):
    if F64:
        return x.to(tl.int64, bitcast=True)
    else:
        return x.to(tl.int32, bitcast=True)


@triton.jit
def _as_float(i, F64: tl.constexpr):
    if F64:
        return i.to(tl.float64, bitcast=True)
    else:
        return i.to(tl.float32, bitcast=True)


@triton.jit
def _copysign(a, b, F64: tl.constexpr):
    magnitude = tl.abs(a)
    return tl.where(_as_int(b, F64) < 0, -magnitude, magnitude)


@triton.jit
def _rint(t, F64: tl.constexpr):
    # |t| + 2**p lands where the spacing is 1, so the add rounds |t| to an integer, ties to even
    if F64:
        big = 4503599627370496.0
    else:
        big = 8388608.0
    a = tl.abs(t)
    return _copysign(tl.where(a < big, (a + big) - big, a), t, F64)


@triton.jit
def _round(t, u, MODE: tl.constexpr, F64: tl.constexpr):
    # _round_ and _stochastic_: t to an integer; u uniform in [0, 1) for stochastic rounding
    if MODE == 0:
        return _rint(t, F64)
    elif MODE == 1:
        return tl.floor(t)
    elif MODE == 2:
        return tl.where(t < 0, tl.ceil(t), tl.floor(t))
    else:
        low = tl.floor(t)
        up = tl.ceil((t - low) - u)
        return _copysign(low + up, low, F64)


@triton.jit
def _clamp(x, lo, hi):
    x = tl.where(x > hi, hi, x)  # NaN compares false and stays NaN
    return tl.where(x < lo, lo, x)


@triton.jit
def _floor_fix(t, x, MODE: tl.constexpr):
    # floor of a tiny negative value is -1, never -0
    if MODE == 1:
        return tl.where((x < 0) & (t == 0), -1.0, t)
    else:
        return t


@triton.jit
def _sum_odd(a, b, F64: tl.constexpr):
    # kernel.sum_to_odd: a + b exactly, or its neighbour with an odd last bit toward the exact sum
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    sb = _as_int(s, F64)
    fix = (err != 0) & (err - err == 0) & ((sb & 1) == 0)
    step = tl.where((_as_int(err, F64) ^ sb) < 0, -1, 1)
    return _as_float(tl.where(fix, sb + step, sb), F64)


@triton.jit
def _fixed(x, u, lo, hi, scale, unscale, MODE: tl.constexpr, F64: tl.constexpr):
    x = _clamp(x, lo, hi)
    t = _round(x * scale, u, MODE, F64)
    return _floor_fix(t, x, MODE) * unscale


@triton.jit
def _float_lean(x, u, lo, hi, min_normal, man_bits, MODE: tl.constexpr, F64: tl.constexpr, MANT: tl.constexpr,
                BIAS: tl.constexpr, EXPMASK: tl.constexpr):
    # symmetric saturating grid with subnormals and >= 1 mantissa bit: the quantum 2**(e - man) of
    # max(|x|, 2**emin), and its reciprocal, built as bit patterns
    x = _clamp(x, lo, hi)
    magnitude = tl.abs(x)
    magnitude = tl.where(magnitude > min_normal, magnitude, min_normal)
    e = (_as_int(magnitude, F64) & EXPMASK) - man_bits
    inverse = _as_float(((2 * BIAS) << MANT) - e, F64)
    t = _round(x * inverse, u, MODE, F64)
    return _floor_fix(t, x, MODE) * _as_float(e, F64)


@triton.jit
def _float_any(x, u, lo, hi, emin_bits, top_bits, man_bits, below_limit, MODE: tl.constexpr, F64: tl.constexpr,
               MANT: tl.constexpr, BIAS: tl.constexpr, EXPMASK: tl.constexpr):
    # any float grid: x / 2**(e - man) as x * 2**(1 - k) * 0.5 (both factors normal), rounded,
    # times the quantum; the clamp after rounding keeps an asymmetric grid inside itself
    x = _clamp(x, lo, hi)
    e = _as_int(x, F64) & EXPMASK
    below = e < below_limit
    e = tl.where(e < emin_bits, emin_bits, e)
    e = tl.where(e > top_bits, top_bits, e)
    e = tl.where(below, emin_bits, e - man_bits)
    twice_inverse = _as_float((((2 * BIAS + 1)) << MANT) - e, F64)
    t = _round(x * twice_inverse * 0.5, u, MODE, F64)
    return _clamp(_floor_fix(t, x, MODE) * _as_float(e, F64), lo, hi)


@triton.jit
def _fmod_pow2(x, period):
    q = x / period
    r = x - tl.where(q < 0, tl.ceil(q), tl.floor(q)) * period
    only_quotient = (x - x == 0) & (r - r != 0)  # x finite, r not: x a multiple of P past 2**1023 P
    return tl.where(only_quotient, 0.0, r)


@triton.jit
def _wrap(x, u, scale, unscale, period, modulus, kmax1, kmin, MODE: tl.constexpr):
    # modular two's complement, in double only
    r = _fmod_pow2(x, period)
    t = _round(r * scale, u, MODE, True)
    t = _floor_fix(t, r, MODE)
    t = _fmod_pow2(t, modulus)
    t = t - tl.where(t >= kmax1, modulus, 0.0)
    t = t + tl.where(t < kmin, modulus, 0.0)
    t = t * unscale
    return tl.where(t == 0, _copysign(0.0 * t, x, True), t)


@triton.jit
def _one(x, u, fp, emin_bits, top_bits, man_bits, below_limit, KIND: tl.constexpr, MODE: tl.constexpr,
         F64: tl.constexpr, MANT: tl.constexpr, BIAS: tl.constexpr, EXPMASK: tl.constexpr):
    """One value rounded onto the grid (quantize_one_f32/f64 of _native.c); fp holds the grid's
    float constants in the work type: lo, hi, scale, unscale, min_normal, period, modulus,
    kmax + 1, kmin, largest finite value."""
    lo = tl.load(fp + 0)
    hi = tl.load(fp + 1)
    if KIND == 0:
        return _float_lean(x, u, lo, hi, tl.load(fp + 4), man_bits, MODE, F64, MANT, BIAS, EXPMASK)
    elif KIND == 1:
        return _fixed(x, u, lo, hi, tl.load(fp + 2), tl.load(fp + 3), MODE, F64)
    elif KIND == 2:
        return _wrap(x, u, tl.load(fp + 2), tl.load(fp + 3), tl.load(fp + 5), tl.load(fp + 6), tl.load(fp + 7),
                     tl.load(fp + 8), MODE)
    elif KIND == 3:  # IEEE overflow to infinity (lo, hi are -inf, inf)
        top = tl.load(fp + 9)
        y = _float_any(x, u, lo, hi, emin_bits, top_bits, man_bits, below_limit, MODE, F64, MANT, BIAS, EXPMASK)
        if MODE == 0:
            return tl.where((y > top) | (y < -top), _copysign(hi, y, F64), y)
        else:
            y = _clamp(y, -top, top)
            if MODE == 1:
                y = tl.where(x < -top, lo, y)
            return tl.where(tl.abs(x) == hi, x, y)
    else:
        return _float_any(x, u, lo, hi, emin_bits, top_bits, man_bits, below_limit, MODE, F64, MANT, BIAS, EXPMASK)


# ---------------------------------------------------------------------------------- kernels
@triton.jit
def _quantize_kernel(x_ptr, out_ptr, u_ptr, n, fp, emin_bits, top_bits, man_bits, below_limit, KIND: tl.constexpr,
                     MODE: tl.constexpr, F64: tl.constexpr, MANT: tl.constexpr, BIAS: tl.constexpr, EXPMASK: tl.constexpr,
                     BLOCK: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = i < n
    x = tl.load(x_ptr + i, mask=inside, other=0.0).to(fp.dtype.element_ty)
    if MODE == 3:
        u = tl.load(u_ptr + i, mask=inside, other=0.0)
    else:
        u = x
    y = _one(x, u, fp, emin_bits, top_bits, man_bits, below_limit, KIND, MODE, F64, MANT, BIAS, EXPMASK)
    tl.store(out_ptr + i, y.to(out_ptr.dtype.element_ty), mask=inside)


@triton.jit
def _mix64(z):
    # splitmix64's output function, in wrapping unsigned 64-bit arithmetic (native._mix, mix64)
    z = z ^ (z >> 30)
    z = z * 0xBF58476D1CE4E5B9
    z = z ^ (z >> 27)
    z = z * 0x94D049BB133111EB
    return z ^ (z >> 31)


@triton.jit
def _uniform(key, counter, UBITS: tl.constexpr, F64: tl.constexpr):
    bits = _mix64(key + counter * 0x9E3779B97F4A7C15) >> (64 - UBITS)
    if F64:
        return bits.to(tl.float64) * (1.0 / (1 << UBITS))
    else:
        return bits.to(tl.float32) * (1.0 / (1 << UBITS))


@triton.jit
def _dot_kernel(a_ptr, w_ptr, out_ptr, M, K, O, fp, emin_bits, top_bits, man_bits, below_limit, key, offset, stride_g,
                stride_m, stride_o, KIND: tl.constexpr, MODE: tl.constexpr, ODD: tl.constexpr, F64: tl.constexpr,
                MANT: tl.constexpr, BIAS: tl.constexpr, EXPMASK: tl.constexpr, UBITS: tl.constexpr, TILE: tl.constexpr):
    # a (G, M, K), w (G, K, O), out (G, M, O), all contiguous; a TILE x TILE block of outputs of
    # group g per program: total = 0; for k: total = q(total + q(a * w))
    g = tl.program_id(0).to(tl.int64)
    rows = tl.program_id(1).to(tl.int64) * TILE + tl.arange(0, TILE)
    cols = tl.program_id(2).to(tl.int64) * TILE + tl.arange(0, TILE)
    row_in = rows < M
    col_in = cols < O
    a_rows = a_ptr + (g * M + rows) * K
    w_cols = w_ptr + g * K * O + cols
    total = tl.zeros((TILE, TILE), dtype=fp.dtype.element_ty)
    index = (offset + g * stride_g + rows[:, None] * stride_m + cols[None, :] * stride_o).to(tl.uint64)
    for k in range(0, K):
        av = tl.load(a_rows + k, mask=row_in, other=0.0)
        wv = tl.load(w_cols + k * O, mask=col_in, other=0.0)
        product = av[:, None] * wv[None, :]
        if MODE == 3:
            counter = (index * K + k) * 2
            up = _uniform(key, counter, UBITS, F64)
            us = _uniform(key, counter + 1, UBITS, F64)
        else:
            up = product
            us = product
        product = _one(product, up, fp, emin_bits, top_bits, man_bits, below_limit, KIND, MODE, F64, MANT, BIAS, EXPMASK)
        if ODD:
            total = _sum_odd(total, product, F64)
        else:
            total = total + product
        total = _one(total, us, fp, emin_bits, top_bits, man_bits, below_limit, KIND, MODE, F64, MANT, BIAS, EXPMASK)
    out = out_ptr + (g * M + rows[:, None]) * O + cols[None, :]
    tl.store(out, total, mask=row_in[:, None] & col_in[None, :])


# ------------------------------------------------------------------------------ Python side
def _constants(grid: tuple[float | int, ...], work: torch.dtype, device: torch.device) -> tuple[torch.Tensor, dict]:
    """The grid (Grid.as_tuple()) as the kernels take it: float constants in a work-type tensor
    (exact in float64, which a scalar argument would not be) and integer and compile-time ones."""
    kind, man, emin, subnormals, lo, hi, frac, bits, kmin, kmax = grid
    f64 = work == torch.float64
    mant, bias = (52, 1023) if f64 else (23, 127)
    emin_bits = (int(emin) + bias) << mant
    inf = kind == 3
    floats = [-math.inf if inf else lo, math.inf if inf else hi, math.ldexp(1.0, int(frac)), math.ldexp(1.0, -int(frac)),
              math.ldexp(1.0, int(emin)) if emin_bits > 0 else 0.0, math.ldexp(1.0, int(bits) - int(frac)),
              math.ldexp(1.0, int(bits)), float(kmax) + 1.0, float(kmin), hi]
    ints = {"emin_bits": emin_bits, "top_bits": (2 * bias) << mant, "man_bits": int(man) << mant,
            "below_limit": emin_bits if (not subnormals and man != 0) else 0}
    consts = {"KIND": int(kind), "F64": f64, "MANT": mant, "BIAS": bias, "EXPMASK": 0x7FF0000000000000 if f64 else 0x7F800000}
    return torch.tensor(floats, dtype=work, device=device), {**ints, **consts}


def quantize(x: torch.Tensor, out: torch.Tensor, grid: tuple[float | int, ...], rounding: str, work: torch.dtype,
             uniform: torch.Tensor | None) -> None:
    """Round contiguous float32/float64 `x` into contiguous `out` (same shape and dtype) on `grid`
    in the work dtype; `uniform` (work dtype, like x) for stochastic rounding (see native.quantize)."""
    if int(grid[0]) == 2 and work != torch.float64:
        raise ValueError("wrapping grids work in double")
    fp, args = _constants(grid, work, x.device)
    n = x.numel()
    _quantize_kernel[(triton.cdiv(n, _BLOCK),)](x, out, uniform if uniform is not None else x, n, fp, MODE=_MODES[rounding],
                                                 BLOCK=_BLOCK, enable_fp_fusion=False, **args)


def dot(a: torch.Tensor, w: torch.Tensor, grid: tuple[float | int, ...], rounding: str, odd: bool, key: int, uniform_bits: int,
        first_row: int, total_rows: int) -> torch.Tensor:
    """(G, M, K) x (G, O, K) -> (G, M, O) in a's dtype (the work type), every product and partial
    sum rounded on `grid` (see native.dot: the same arguments, the same bits)."""
    g, m, k = a.shape
    o = w.shape[1]
    fp, args = _constants(grid, a.dtype, a.device)
    out = torch.empty(g, m, o, dtype=a.dtype, device=a.device)
    if g * m * o == 0:
        return out
    lhs = a.contiguous()
    rhs = w.transpose(1, 2).contiguous()  # (G, K, O): one contiguous row of outputs per step
    launch = (g, triton.cdiv(m, _TILE), triton.cdiv(o, _TILE))
    _dot_kernel[launch](lhs, rhs, out, m, k, o, fp, key=key & (2**64 - 1), offset=first_row * o, stride_g=total_rows * o, stride_m=o,
                        stride_o=1, MODE=_MODES[rounding], ODD=bool(odd), UBITS=uniform_bits, TILE=_TILE,
                        enable_fp_fusion=False, **args)
    return out

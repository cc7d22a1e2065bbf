"""The accumulator kernel: batched dot products with every product and partial sum rounded.

`dot(a, w, acc)` computes, for every group g, row m and output o,

    total = 0
    for k in 0 .. K-1:  total = q(total + q(a[g, m, k] * w[g, o, k]))

where q rounds onto the accumulator format. Every product op of the emulator (linear, convolution,
transposed convolution, matmul, attention, embedding bags, recurrent gates) reduces to this kernel,
so one kernel defines the order and the exactness of all of them. It runs natively (`native.dot`,
C) on CPU tensors where it can, as a Triton kernel on CUDA tensors where Triton is installed
(triton_kernels.dot), else as the PyTorch loop below; all give the same bits.

Stochastic rounding draws come from a counter-based generator (splitmix64): the uniform of the
product (site 0) or sum (site 1) of step k for result element i is a hash of one key drawn from
the caller's generator and the counter (i * K + k) * 2 + site, where i counts the elements of the
op's whole (G, rows, O) result (`Draws`), so results depend on the key only, never on chunking,
threads or the path taken.

Exactness: operands are float32 values, so products are formed exactly (in float32 when the
operands' significands fit, else float64), and each sum is formed exactly or rounded to odd (float32
when the accumulator has at most 22 significant bits, else float64, and at most 51): rounding a
sum rounded to odd once more onto a format with at least 2 fewer significant bits gives the
rounding of the exact sum in every mode (Boldo and Melquiond, "Emulation of FMA and correctly
rounded sums: proved algorithms using rounding to odd", IEEE TC 2008). So each q rounds the exact
result once. Fixed-point sums are exact in the work dtype and need no such care.

Fast path: when weights, data and accumulator are fixed point with accumulator fraction bits >=
weight + data fraction bits, every product is exact in the accumulator. If moreover every partial
sum, in any order, stays inside the accumulator's range (it lies between the sum of the negative
products and the sum of the positive ones), or the accumulator wraps (modular sums are
order-free), one float64 matmul is bit-identical to the sequential loop. Rows whose bounds leave
the range are recomputed sequentially.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import native
from ..formats import Format
from ..quantization import Grid, grid_of, quantize, round_onto_grid

__all__ = ["dot", "sequential", "work_dtype", "check_accumulator", "counter_uniforms", "Draws", "sum_to_odd", "sums_to_odd"]

#: elements of one (groups x rows x outputs) block of the sequential loop: small enough to stay
#: in cache, large enough to amortize Python's per-step overhead
_BLOCK = 1 << 19


def check_accumulator(acc: Format) -> Format:
    """The accumulator format, or a ValueError saying why it cannot hold a running sum."""
    if acc.adaptive:
        raise ValueError(f"accumulator format {acc} is adaptive; an accumulator needs a static format")
    if acc.accumulator_error is not None:
        raise ValueError(f"accumulator {acc}: {acc.accumulator_error}")
    return acc


def work_dtype(acc: Format, w_fmt: Format | None, x_fmt: Format | None, rounding: str = "nearest") -> torch.dtype:
    """float32 when products are exact and sums round correctly in float32, else float64."""
    operands = (w_fmt, x_fmt)
    products_exact = sum(24 if f is None else f.significand_bits for f in operands) <= 24
    ranges_ok = all(f is not None and f.within_float32_products for f in operands)
    return torch.float32 if products_exact and ranges_ok and acc.sum_precision(rounding) <= 24 else torch.float64


def sums_to_odd(grid: Grid, rounding: str, dtype: torch.dtype) -> bool:
    """True when the kernel forms sums rounded to odd: on float grids, except under nearest
    rounding in a dtype with 2p + 2 bits, where a plain sum's one rounding is innocuous."""
    precision = 24 if dtype == torch.float32 else 53
    return grid.kind == "float" and (rounding != "nearest" or 2 * (grid.man + 1) + 2 > precision)


def sum_to_odd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b (float32 or float64) rounded to odd: the exact sum where the dtype holds it, else its
    neighbour with an odd last bit on the side of the exact sum (an overflowed sum stays inf)."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)  # two-sum: s + err == a + b exactly
    return _to_odd(s, err)


def product_to_odd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a * b (float64) rounded to odd, from Dekker's exact two-product (Veltkamp splitting); exact
    where the product's error term is a float64 (no underflow below 2**-969)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl  # p + err == a * b exactly
    return _to_odd(p, err)


def _split(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Veltkamp's split of float64 values into 26- and 27-bit halves, hi + lo == a exactly."""
    c = a * 134217729.0  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _to_odd(s: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
    """s, the rounded value of s + err, moved to its odd neighbour toward s + err when inexact."""
    ints = torch.int32 if s.dtype == torch.float32 else torch.int64
    fix = (err != 0) & torch.isfinite(err) & ((s.view(ints) & 1) == 0)
    if fix.any():
        toward = torch.where(err > 0, torch.full_like(s, math.inf), torch.full_like(s, -math.inf))
        s = torch.where(fix, torch.nextafter(s, toward), s)
    return s


def _signed(v: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return v - 2**64 if v >= 2**63 else v


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)


def _shift_right(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch shifts arithmetically)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def counter_uniforms(key: int, counters: torch.Tensor, uniform_bits: int, dtype: torch.dtype) -> torch.Tensor:
    """Uniforms in [0, 1), multiples of 2**-uniform_bits: splitmix64 of key + counter * golden,
    in wrapping int64 arithmetic (the same function as `mix64` in _native.c)."""
    z = counters * _GOLDEN + _signed(key)
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    z = z ^ _shift_right(z, 31)
    return _shift_right(z, 64 - uniform_bits).to(dtype) * math.ldexp(1.0, -uniform_bits)


@dataclass(frozen=True)
class Draws:
    """The source of stochastic rounding's uniforms for one kernel call: a key drawn once per op,
    and where the call's rows sit in the op's whole (G, total_rows, O) result (rows first_row..;
    total_rows None: the call is the whole result)."""

    key: int
    first_row: int = 0
    total_rows: int | None = None

    @staticmethod
    def draw(rounding: str, generator: torch.Generator | None) -> Draws:
        """One 62-bit key from the caller's generator for stochastic rounding (0 otherwise)."""
        return Draws(int(torch.randint(0, 2**62, (1,), generator=generator)) if rounding == "stochastic" else 0)

    def rows(self, first_row: int, total_rows: int) -> Draws:
        """The same key for rows first_row.. of a total_rows-row result."""
        return Draws(self.key, first_row, total_rows)


def _draws(rounding: str, source: torch.Generator | Draws | None) -> Draws:
    return source if isinstance(source, Draws) else Draws.draw(rounding, source)


def sequential(
    a: torch.Tensor,
    w: torch.Tensor,
    acc: Format,
    rounding: str,
    generator: torch.Generator | Draws | None,
    trace: bool = False,
) -> torch.Tensor:
    """(G, M, K) x (G, O, K) -> (G, M, O), rounding every product and every partial sum.

    `generator` seeds stochastic rounding (or `Draws`, for a chunk of a larger result). With
    trace=True returns the running sums after every step instead: (K + 1, G, M, O).
    """
    grid = grid_of(acc, a.dtype)
    assert grid is not None, f"accumulator {acc} has no grid"
    draws = _draws(rounding, generator)
    if draws.total_rows is None:
        draws = draws.rows(0, a.shape[1])
    uniform_bits = 23 if a.dtype == torch.float32 else 52
    work = grid.work_dtype(a.dtype, rounding)  # float64 where rounding onto the grid needs it
    odd = sums_to_odd(grid, rounding, work)
    if not trace and a.device.type == "cuda" and (kernels := native.gpu_kernels()) is not None:
        native.record("dot", "triton")
        result = kernels.dot(a.to(work), w.to(work), grid.as_tuple(), rounding, odd, draws.key, uniform_bits, draws.first_row,
                             draws.total_rows)
        return result.to(a.dtype)
    if not trace and a.device.type == "cpu" and native.enabled():
        native.record("dot", "native")
        result = native.dot(a.to(work), w.to(work), grid.as_tuple(), rounding, odd, draws.key, uniform_bits, draws.first_row,
                            draws.total_rows)  # type: ignore[arg-type]
        return result.to(a.dtype)
    native.record("dot", "torch")
    return _sequential_torch(a.to(work), w.to(work), grid, rounding, odd, draws, uniform_bits, trace).to(a.dtype)


def _sequential_torch(a: torch.Tensor, w: torch.Tensor, grid: Grid, rounding: str, odd: bool, draws: Draws, uniform_bits: int,
                      trace: bool) -> torch.Tensor:
    """The PyTorch loop of `sequential`: one step of k at a time over blocks of rows."""
    g, m, k_total = a.shape
    o = w.shape[1]
    at = a.permute(2, 0, 1).contiguous()  # (K, G, M): one contiguous slice per step
    wt = w.permute(2, 0, 1).contiguous()  # (K, G, O)
    rows = max(1, min(m, _BLOCK // max(g * o, 1)))
    out = torch.empty(g, m, o, dtype=a.dtype, device=a.device)
    steps = torch.zeros(k_total + 1, g, m, o, dtype=a.dtype, device=a.device) if trace else None
    index = None
    if rounding == "stochastic":  # element (g, m, o)'s number in the whole (G, total_rows, O) result
        assert draws.total_rows is not None
        rows_of_g = torch.arange(g, device=a.device)[:, None] * draws.total_rows + draws.first_row + torch.arange(m, device=a.device)
        index = rows_of_g[:, :, None] * o + torch.arange(o, device=a.device)
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        total = torch.zeros(g, stop - start, o, dtype=a.dtype, device=a.device)
        prod = torch.empty_like(total)
        base = index[:, start:stop] * (2 * k_total) if index is not None else None
        for k in range(k_total):
            u_prod = u_sum = None
            if base is not None:
                u_prod = counter_uniforms(draws.key, base + 2 * k, uniform_bits, a.dtype)
                u_sum = counter_uniforms(draws.key, base + 2 * k + 1, uniform_bits, a.dtype)
            torch.mul(at[k, :, start:stop, None], wt[k, :, None, :], out=prod)
            round_onto_grid(prod, grid, rounding, u_prod, out=prod)
            if odd:
                total.copy_(sum_to_odd(total, prod))
            else:
                total.add_(prod)
            round_onto_grid(total, grid, rounding, u_sum, out=total)
            if steps is not None:
                steps[k + 1, :, start:stop] = total
        out[:, start:stop] = total
    return steps if steps is not None else out


def _fast_fixed(acc: Format, w_fmt: Format | None, x_fmt: Format | None) -> bool:
    """Products are exact in the accumulator: all three on uniform power-of-two grids, the
    accumulator's step no coarser than the products'."""
    steps = [None if f is None else f.grid_exponent for f in (acc, w_fmt, x_fmt)]
    return None not in steps and steps[0] <= steps[1] + steps[2]  # type: ignore[operator]


def _outside(a64: torch.Tensor, w64: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """(G, M) mask of rows where some partial sum, in some order, may leave [lo, hi].

    Every partial sum lies between the sum of the negative products and that of the positive
    ones; a cheap bound (max|a| sum|w|) clears most rows, the exact one the rest.
    """
    coarse = a64.abs().amax(2, keepdim=True) * w64.abs().sum(2)[:, None, :]  # >= sum |a w|
    risky = ((coarse > hi) | (-coarse < lo)).any(2)
    if not risky.any():
        return risky
    ap, an = a64.clamp(min=0), a64.clamp(max=0)
    wp, wn = w64.clamp(min=0).transpose(1, 2), w64.clamp(max=0).transpose(1, 2)
    positive = ap @ wp + an @ wn
    negative = ap @ wn + an @ wp
    return risky & ((positive > hi) | (negative < lo)).any(2)


def dot(
    a: torch.Tensor,
    w: torch.Tensor,
    acc: Format,
    rounding: str,
    generator: torch.Generator | Draws | None,
    w_fmt: Format | None,
    x_fmt: Format | None,
) -> torch.Tensor:
    """(G, M, K) x (G, O, K) -> (G, M, O) with accumulator arithmetic (fast path where exactly equal)."""
    dtype = work_dtype(acc, w_fmt, x_fmt, rounding)
    if not _fast_fixed(acc, w_fmt, x_fmt):
        return sequential(a.to(dtype), w.to(dtype), acc, rounding, generator)
    assert w_fmt is not None and x_fmt is not None and w_fmt.grid_exponent is not None and x_fmt.grid_exponent is not None
    a64, w64 = a.double(), w.double()
    total = a64 @ w64.transpose(1, 2)  # exact: every partial sum is a multiple of the products' step below 2**53
    if acc.wraps:
        limit = math.ldexp(1.0, 52 + w_fmt.grid_exponent + x_fmt.grid_exponent)
        lo, hi = -limit, limit
    else:
        lo, hi = acc.min_value, acc.max_value
    redo = _outside(a64, w64, lo, hi).nonzero()
    for g in redo[:, 0].unique().tolist():
        rows = redo[redo[:, 0] == g, 1]
        # exact products and sums: only saturation happens, which no draw can change
        total[g, rows] = sequential(a64[g, rows][None], w64[g][None], acc, rounding, Draws(0))[0]
    if acc.wraps:
        quantize(total, acc, out=total)  # exact sum, reduced modulo 2**bits once
    return total

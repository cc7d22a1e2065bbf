"""The accumulator kernel: batched dot products with every product and partial sum rounded.

`dot(a, w, acc)` computes, for every group g, row m and output o,

    total = 0
    for k in 0 .. K-1:  total = q(total + q(a[g, m, k] * w[g, o, k]))

where q rounds onto the accumulator format. Every product op of the emulator (linear, convolution,
transposed convolution, matmul, attention, embedding bags, recurrent gates) reduces to this kernel,
so one kernel defines the order and the exactness of all of them.

Exactness: operands are float32 values, so products and sums are formed exactly or with one
innocuous rounding before q (float32 when the formats are narrow enough, else float64, where
2p + 2 <= 53 for every p <= 24 bit format), so each q rounds the exact result once.

Fast path: when weights, data and accumulator are fixed point with accumulator fraction bits >=
weight + data fraction bits, every product is exact in the accumulator. If moreover every partial
sum, in any order, stays inside the accumulator's range (it lies between the sum of the negative
products and the sum of the positive ones), or the accumulator wraps (modular sums are
order-free), one float64 matmul is bit-identical to the sequential loop. Rows whose bounds leave
the range are recomputed sequentially.
"""

from __future__ import annotations

import math

import torch

from ..formats import Format
from ..quantization import quantize

__all__ = ["dot", "sequential", "work_dtype", "check_accumulator"]

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


def work_dtype(acc: Format, w_fmt: Format | None, x_fmt: Format | None) -> torch.dtype:
    """float32 when products are exact and sums round innocuously in float32, else float64."""
    operands = (w_fmt, x_fmt)
    products_exact = sum(24 if f is None else f.significand_bits for f in operands) <= 24
    ranges_ok = all(f is not None and f.within_float32_products for f in operands)
    return torch.float32 if products_exact and ranges_ok and acc.float32_sums_exact else torch.float64


def sequential(
    a: torch.Tensor,
    w: torch.Tensor,
    acc: Format,
    rounding: str,
    generator: torch.Generator | None,
    trace: bool = False,
) -> torch.Tensor:
    """(G, M, K) x (G, O, K) -> (G, M, O), rounding every product and every partial sum.

    With trace=True returns the running sums after every step instead: (K + 1, G, M, O).
    """
    g, m, k_total = a.shape
    o = w.shape[1]
    at = a.permute(2, 0, 1).contiguous()  # (K, G, M): one contiguous slice per step
    wt = w.permute(2, 0, 1).contiguous()  # (K, G, O)
    rows = max(1, min(m, _BLOCK // max(g * o, 1)))
    out = torch.empty(g, m, o, dtype=a.dtype, device=a.device)
    steps = torch.zeros(k_total + 1, g, m, o, dtype=a.dtype, device=a.device) if trace else None
    for start in range(0, m, rows):
        stop = min(start + rows, m)
        total = torch.zeros(g, stop - start, o, dtype=a.dtype, device=a.device)
        prod = torch.empty_like(total)
        for k in range(k_total):
            torch.mul(at[k, :, start:stop, None], wt[k, :, None, :], out=prod)
            quantize(prod, acc, rounding, generator, out=prod)
            total.add_(prod)
            quantize(total, acc, rounding, generator, out=total)
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
    generator: torch.Generator | None,
    w_fmt: Format | None,
    x_fmt: Format | None,
) -> torch.Tensor:
    """(G, M, K) x (G, O, K) -> (G, M, O) with accumulator arithmetic (fast path where exactly equal)."""
    dtype = work_dtype(acc, w_fmt, x_fmt)
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
        total[g, rows] = sequential(a64[g, rows][None], w64[g][None], acc, rounding, generator)[0]
    if acc.wraps:
        quantize(total, acc, out=total)  # exact sum, reduced modulo 2**bits once
    return total

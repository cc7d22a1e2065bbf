"""Layers computed the way a reduced-precision MAC array computes them.

Every product and every partial sum is rounded in the accumulator format, in a fixed order:

    acc = 0
    for k in natural order:  acc = q(acc + q(w[k] * x[k]))
    y = q(acc + bias)

The natural order is the layer's reduction index: input feature for `linear`; for convolutions
input channel (outermost), then kernel row, then kernel column (innermost) -- the order of
`weight.flatten(1)` and of `torch.nn.functional.unfold`. Padding contributes exact zeros.

Exactness: operands are float32 values, so products and sums are formed exactly or with one
innocuous rounding before `q` (float32 when the formats are narrow enough, else float64, where
2p + 2 <= 53 for every p <= 24 bit format), so each q rounds the exact result once.

Fast path: when weights, data and accumulator are fixed point with accumulator fraction bits >=
weight + data fraction bits, every product is exact in the accumulator; if moreover sum|w||x|
cannot leave the accumulator's range (or the accumulator wraps), every order of summation gives
the same exact sum, so one float64 matmul is bit-identical to the sequential loop. Inputs whose
bound fails are recomputed sequentially.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .formats import Binary, FixedPoint, Float32, Format, MiniFloat, PowerOfTwo, as_format
from .quantize import _check_rounding, quantize

__all__ = ["linear", "conv1d", "conv2d", "trace_accumulation", "significant_bits"]

#: elements of one (rows x outputs) block of the sequential loop: small enough to stay in cache,
#: large enough to amortize Python's per-step overhead
_BLOCK = 1 << 19


def significant_bits(fmt: Format | None) -> int:
    """Bits of significand a value of `fmt` can carry (24 for float32 or unknown)."""
    if fmt is None or isinstance(fmt, Float32) or fmt.adaptive:
        return 24
    if isinstance(fmt, FixedPoint):
        return fmt.bits - 1 if fmt.signed else fmt.bits
    if isinstance(fmt, MiniFloat):
        return fmt.man + 1
    if isinstance(fmt, (PowerOfTwo, Binary)):
        return 1
    return 24


def _work_dtype(acc: Format, w_fmt: Format | None, x_fmt: Format | None) -> torch.dtype:
    """float32 when products are exact and sums round innocuously in float32, else float64."""
    products_exact = significant_bits(w_fmt) + significant_bits(x_fmt) <= 24
    ranges_ok = all(
        f is not None and not f.adaptive and not isinstance(f, Float32)
        and f.min_positive >= 2.0**-63 and f.max_value <= 2.0**63
        for f in (w_fmt, x_fmt)
    )
    if isinstance(acc, MiniFloat):
        sums_ok = acc.man + 1 <= 11  # 24 >= 2p + 2 (Figueroa): double rounding is innocuous
    elif isinstance(acc, FixedPoint):
        sums_ok = acc.bits <= 23  # a sum of two accumulator values fits float32's significand
    else:
        sums_ok = False
    return torch.float32 if products_exact and ranges_ok and sums_ok else torch.float64


def _check_accumulator(acc: Format | str) -> Format:
    acc = as_format(acc)
    if acc.adaptive:
        raise ValueError(f"accumulator format {acc} is adaptive; an accumulator needs a static format")
    if isinstance(acc, FixedPoint) and acc.bits > 53:
        raise ValueError(f"accumulator {acc}: at most 53 bits can be emulated exactly (float64)")
    if isinstance(acc, Binary):
        raise ValueError(f"accumulator {acc}: a binary accumulator cannot hold a sum")
    return acc


def _sequential(
    a: torch.Tensor,
    w: torch.Tensor,
    acc: Format,
    rounding: str,
    generator: torch.Generator | None,
    trace: bool = False,
) -> torch.Tensor:
    """Rows of `a` (M, K) dotted with rows of `w` (O, K), rounding every product and sum: (M, O).

    With trace=True returns the running sums after every step instead: (K + 1, M, O).
    """
    m, k_total = a.shape
    o = w.shape[0]
    at = a.t().contiguous()  # (K, M): one contiguous column per step
    rows = max(1, min(m, _BLOCK // max(o, 1)))
    out = torch.empty(m, o, dtype=a.dtype)
    steps = torch.zeros(k_total + 1, m, o, dtype=a.dtype) if trace else None
    for start in range(0, m, rows):
        cols = at[:, start : start + rows]
        total = torch.zeros(cols.shape[1], o, dtype=a.dtype)
        prod = torch.empty_like(total)
        for k in range(k_total):
            torch.mul(cols[k].unsqueeze(1), w[:, k], out=prod)
            quantize(prod, acc, rounding, generator, out=prod)
            total.add_(prod)
            quantize(total, acc, rounding, generator, out=total)
            if steps is not None:
                steps[k + 1, start : start + rows] = total
        out[start : start + rows] = total
    return steps if steps is not None else out


def _fast_fixed(acc: Format, w_fmt: Format | None, x_fmt: Format | None) -> bool:
    """Products are exact in the accumulator: all fixed point, enough accumulator fraction bits."""
    fixed = [f for f in (acc, w_fmt, x_fmt) if isinstance(f, FixedPoint) and not f.adaptive]
    return len(fixed) == 3 and acc.frac >= w_fmt.frac + x_fmt.frac  # type: ignore[union-attr]


def _dot(
    a: torch.Tensor,
    w: torch.Tensor,
    acc: Format,
    rounding: str,
    generator: torch.Generator | None,
    w_fmt: Format | None,
    x_fmt: Format | None,
) -> torch.Tensor:
    """(M, K) x (O, K) -> (M, O) with accumulator arithmetic (fast path where exactly equal)."""
    dtype = _work_dtype(acc, w_fmt, x_fmt)
    if not _fast_fixed(acc, w_fmt, x_fmt):
        return _sequential(a.to(dtype), w.to(dtype), acc, rounding, generator)
    assert isinstance(acc, FixedPoint) and isinstance(w_fmt, FixedPoint) and isinstance(x_fmt, FixedPoint)
    a64, w64 = a.double(), w.double()
    total = a64 @ w64.t()  # exact: every partial sum is an integer multiple of 2**-(fw+fx) < 2**53
    limit = acc.max_value if acc.overflow == "saturate" else math.ldexp(1.0, 52 - w_fmt.frac - x_fmt.frac)
    row_bound = a64.abs().amax(1, keepdim=True) * w64.abs().sum(1)  # >= sum|w||x| per output
    risky = (row_bound > limit).any(1)
    if risky.any():
        exact_bound = a64[risky].abs() @ w64.abs().t()
        still = (exact_bound > limit).any(1)
        idx = risky.nonzero().squeeze(1)[still]
        if idx.numel():
            total[idx] = _sequential(a64[idx], w64, acc, rounding, generator)
    if acc.overflow == "wrap":
        quantize(total, acc, out=total)  # exact sum, reduced modulo 2**bits once
    return total


def _finish(total: torch.Tensor, bias: torch.Tensor | None, acc: Format, rounding: str, generator) -> torch.Tensor:
    """q(acc + bias) in float64 (one innocuous rounding of the exact sum)."""
    if bias is None:
        return total
    total = total.double() + bias.double()
    return quantize(total, acc, rounding, generator, out=total)


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    accumulator: Format | str = "float32",
    *,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
    weight_format: Format | None = None,
    data_format: Format | None = None,
) -> torch.Tensor:
    """`F.linear` with every product and partial sum rounded in `accumulator`, summed over
    input features in order, bias added last. `weight_format`/`data_format` (the static formats
    the operands already hold) enable float32 work and the exact fast path."""
    acc = _check_accumulator(accumulator)
    _check_rounding(rounding)
    if weight.dim() != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input (..., {x.shape[-1]}) does not match weight {tuple(weight.shape)}")
    lead = x.shape[:-1]
    a = x.detach().reshape(-1, x.shape[-1])
    total = _dot(a, weight.detach(), acc, rounding, generator, weight_format, data_format)
    y = _finish(total, None if bias is None else bias.detach(), acc, rounding, generator)
    return y.to(x.dtype).reshape(*lead, weight.shape[0])


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    accumulator: Format | str = "float32",
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    *,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
    weight_format: Format | None = None,
    data_format: Format | None = None,
) -> torch.Tensor:
    """`F.conv2d` with accumulator arithmetic; reduction order: channel, kernel row, kernel column."""
    acc = _check_accumulator(accumulator)
    _check_rounding(rounding)
    if isinstance(padding, str):
        raise ValueError("conv2d: give padding as numbers (string padding modes are not supported)")
    n, c, h, wd = x.shape
    o, cg, kh, kw = weight.shape
    if c != cg * groups or o % groups:
        raise ValueError(f"conv2d: input with {c} channels does not match weight {tuple(weight.shape)} and groups={groups}")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    cols = F.unfold(x.detach(), (kh, kw), dilation=dilation, padding=padding, stride=stride)  # (N, C*kh*kw, L)
    hout = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wout = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    length = cols.shape[2]
    k_group, o_group = cg * kh * kw, o // groups
    w2 = weight.detach().reshape(o, k_group)
    parts = []
    for g in range(groups):
        a = cols[:, g * k_group : (g + 1) * k_group].transpose(1, 2).reshape(n * length, k_group)
        wg = w2[g * o_group : (g + 1) * o_group]
        bg = None if bias is None else bias.detach()[g * o_group : (g + 1) * o_group]
        total = _dot(a, wg, acc, rounding, generator, weight_format, data_format)
        parts.append(_finish(total, bg, acc, rounding, generator))
    y = torch.cat(parts, 1) if groups > 1 else parts[0]  # (N*L, O)
    return y.to(x.dtype).reshape(n, length, o).transpose(1, 2).reshape(n, o, hout, wout)


def conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    accumulator: Format | str = "float32",
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    **kwargs,
) -> torch.Tensor:
    """`F.conv1d` with accumulator arithmetic (a conv2d over a height-1 image)."""
    s, p, d = (v[0] if isinstance(v, tuple) else v for v in (stride, padding, dilation))
    y = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, accumulator, (1, s), (0, p), (1, d), groups, **kwargs)
    return y.squeeze(2)


def trace_accumulation(
    weights: torch.Tensor,
    inputs: torch.Tensor,
    formats: list[Format | str],
    bias: float | None = None,
    rounding: str = "nearest",
) -> dict[str, torch.Tensor]:
    """Running sum of one output neuron, step by step, under each accumulator format (Hill).

    `weights` and `inputs` are the neuron's K operands in summation order. Returns, per format
    string, a float64 tensor of K + 1 partial sums (starting at 0), plus the final sum with the
    bias when one is given; "exact" holds the float64 running sum for comparison.
    """
    w = weights.detach().reshape(1, -1).double()
    a = inputs.detach().reshape(1, -1).double()
    if w.shape != a.shape:
        raise ValueError(f"trace_accumulation: {w.shape[1]} weights but {a.shape[1]} inputs")
    result = {"exact": torch.cat([torch.zeros(1, dtype=torch.float64), (w * a).cumsum(1)[0]])}
    if bias is not None:
        result["exact"] = torch.cat([result["exact"], result["exact"][-1:] + bias])
    for fmt in formats:
        acc = _check_accumulator(fmt)
        steps = _sequential(a, w, acc, rounding, None, trace=True)[:, 0, 0]
        if bias is not None:
            last = _finish(steps[-1:].clone(), torch.tensor([float(bias)], dtype=torch.float64), acc, rounding, None)
            steps = torch.cat([steps, last])
        result[str(acc)] = steps
    return result


"""Product ops computed the way a reduced-precision MAC array computes them (see `kernel.dot`).

Every output is a dot product summed in its natural order, then the bias is added:
`y = q(acc + bias)`. The natural order is the op's reduction index:

- `linear`, `matmul`: the shared dimension k, first to last;
- convolutions (1-, 2- and 3-D): input channel outermost, then the kernel dimensions in order
  (the order of `weight.flatten(1)`); padding contributes exact zeros;
- transposed convolutions: computed as the equivalent direct convolution of the zero-inserted
  input with the flipped kernel, in that convolution's order (inserted zeros add exact zeros);
- `embedding_bag`: the bag's entries in order, each row scaled by its per-sample weight.

All tensors are created on the input's device. Results come back in the input's dtype: an
accumulator wider than float32's 24 significant bits keeps its exact value in float64, and a
float32 result holds the nearest of its values that float32 can hold (`quantize.to_dtype`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..formats import Format, as_format
from ..quantization import check_rounding, quantize, to_dtype
from .kernel import Draws, check_accumulator, dot, sequential, sum_to_odd

__all__ = ["add_bias", "pad", "linear", "conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "matmul", "embedding_bag", "trace_accumulation"]


def _accumulator(accumulator: Format | str, rounding: str) -> Format:
    check_rounding(rounding)
    return check_accumulator(as_format(accumulator))


def add_bias(total: torch.Tensor, bias: torch.Tensor | None, acc: Format, rounding: str, generator: torch.Generator | None) -> torch.Tensor:
    """q(acc + bias), the exact sum rounded once onto the accumulator (bias broadcasts on the last
    dimension): in integers for fixed point (`_add_bias_fixed`), else float64 rounded to odd."""
    if bias is None:
        return total
    a, b = torch.broadcast_tensors(total.double(), bias.detach().double().to(total.device))
    if acc.grid_exponent is not None:
        return _add_bias_fixed(a, b, acc, rounding, generator)
    s = sum_to_odd(a, b).contiguous()
    return quantize(s, acc, rounding, generator, out=s)


def _add_bias_fixed(a: torch.Tensor, b: torch.Tensor, acc: Format, rounding: str, generator: torch.Generator | None) -> torch.Tensor:
    """q(a + b) for a fixed-point accumulator holding `a`, exactly at any width: the bias in steps
    splits exactly into whole steps (reduced modulo 2**bits where the accumulator wraps, which keeps
    the parity ties to even look at) and a fraction in [0, 1) that decides the rounding; toward
    zero reads the sign of the unreduced sum, which float64 gets right."""
    assert acc.grid_exponent is not None
    step = math.ldexp(1.0, acc.grid_exponent)
    scaled = b / step  # exact: a power-of-two scaling of a float32 or float64 value
    whole = torch.floor(scaled)
    frac = scaled - whole
    if acc.wraps:
        period = math.ldexp(1.0, acc.bits)
        whole = whole - torch.trunc(whole / period) * period
    else:
        whole = whole.clamp(-(2.0**62), 2.0**62)  # past the range either way: it saturates
    k = (a / step).to(torch.int64) + whole.to(torch.int64)
    if rounding == "nearest":
        k += (frac > 0.5) | ((frac == 0.5) & (k % 2 != 0))
    elif rounding == "toward_zero":
        k += (frac > 0) & ((a + b) < 0)
    elif rounding == "stochastic":
        k += torch.rand(frac.shape, dtype=torch.float64, generator=generator, device=frac.device) < frac
    lo, hi = round(acc.min_value / step), round(acc.max_value / step)
    k = ((k - lo) & ((1 << acc.bits) - 1)) + lo if acc.wraps else k.clamp(lo, hi)
    return k.double() * step


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
    """`F.linear` with every product and partial sum rounded in `accumulator`, summed over input
    features in order, bias added last. `weight_format`/`data_format` (the static formats the
    operands already hold) enable float32 work and the exact fast path."""
    acc = _accumulator(accumulator, rounding)
    if weight.dim() != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input (..., {x.shape[-1]}) does not match weight {tuple(weight.shape)}")
    a = x.detach().reshape(1, -1, x.shape[-1])
    total = dot(a, weight.detach()[None], acc, rounding, generator, weight_format, data_format)[0]
    y = add_bias(total, bias, acc, rounding, generator)
    return to_dtype(y, acc, x.dtype).reshape(*x.shape[:-1], weight.shape[0])


def matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    accumulator: Format | str = "float32",
    *,
    bias: torch.Tensor | None = None,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
    a_format: Format | None = None,
    b_format: Format | None = None,
) -> torch.Tensor:
    """`torch.matmul` (1-D operands and broadcast batch dimensions included) with accumulator
    arithmetic over the shared dimension, in order; `bias` (broadcast to the result) is added
    last, in the accumulator."""
    acc = _accumulator(accumulator, rounding)
    a2 = a.detach()[None] if a.dim() == 1 else a.detach()
    b2 = b.detach()[:, None] if b.dim() == 1 else b.detach()
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match")
    batch = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    n, k, m = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    lhs = a2.expand(*batch, n, k).reshape(-1, n, k)
    rhs = b2.expand(*batch, k, m).reshape(-1, k, m).transpose(1, 2)
    out = dot(lhs, rhs, acc, rounding, generator, b_format, a_format).reshape(*batch, n, m)
    if a.dim() == 1:
        out = out.squeeze(-2)
    if b.dim() == 1:
        out = out.squeeze(-1)
    out = add_bias(out, bias, acc, rounding, generator)
    return to_dtype(out, acc, torch.promote_types(a.dtype, b.dtype))


def _tuple(v: int | Sequence[int], n: int, what: str) -> tuple[int, ...]:
    out = (v,) * n if isinstance(v, int) else tuple(int(e) for e in v)
    if len(out) != n:
        raise ValueError(f"{what} must have {n} entries for a {n}-D convolution, got {v!r}")
    return out


def pad(x: torch.Tensor, low: Sequence[int], high: Sequence[int]) -> torch.Tensor:
    """Zero-pad (or crop, for negative amounts) the spatial dimensions."""
    pads = [p for d in reversed(range(len(low))) for p in (low[d], high[d])]
    return F.pad(x, pads) if any(pads) else x


#: elements of unfolded windows made at once: a convolution unfolds a few images at a time
_PATCH_CHUNK = 1 << 22


def _patches(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int], groups: int) -> torch.Tensor:
    """(N, C, *S) -> (groups, N * L, C/groups * prod(kernel)): every window in reduction order."""
    n, c = x.shape[:2]
    nd = len(kernel)
    for d in range(nd):
        x = x.unfold(2 + d, dilation[d] * (kernel[d] - 1) + 1, stride[d])
        if dilation[d] > 1:
            x = x[..., :: dilation[d]]
    positions = x.shape[2 : 2 + nd]
    x = x.reshape(n, groups, c // groups, *positions, *kernel)
    order = [1, 0, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd)]  # (G, N, L..., Cg, k...)
    return x.permute(order).reshape(groups, n * math.prod(positions), -1)


def conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    accumulator: Format | str = "float32",
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
    weight_format: Format | None = None,
    data_format: Format | None = None,
) -> torch.Tensor:
    """`F.conv1d/2d/3d` (by the weight's dimension) with accumulator arithmetic; reduction
    order: input channel, then each kernel dimension."""
    acc = _accumulator(accumulator, rounding)
    nd = weight.dim() - 2
    if isinstance(padding, str):
        raise ValueError(f"conv{nd}d: give padding as numbers (string padding modes are not supported)")
    o, cg, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])
    if x.dim() != nd + 2 or x.shape[1] != cg * groups or o % groups:
        raise ValueError(f"conv{nd}d: input {tuple(x.shape)} does not match weight {tuple(weight.shape)} and groups={groups}")
    stride, padding, dilation = (_tuple(v, nd, name) for v, name in ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    xp = pad(x.detach(), padding, padding)
    out_size = [(xp.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1 for d in range(nd)]
    w = weight.detach().reshape(groups, o // groups, -1)
    n, positions = x.shape[0], math.prod(out_size)
    step = max(1, _PATCH_CHUNK // max(groups * positions * w.shape[2], 1))
    draws = Draws.draw(rounding, generator)
    parts = [dot(_patches(xp[n0:n0 + step], kernel, stride, dilation, groups), w, acc, rounding,
                 draws.rows(n0 * positions, n * positions), weight_format, data_format) for n0 in range(0, n, step)]
    total = torch.cat(parts, 1) if len(parts) > 1 else parts[0]  # (G, N*L, O/G)
    total = total.transpose(0, 1).reshape(-1, o)  # (N*L, O): channel index g * O/G + j
    y = add_bias(total, bias, acc, rounding, generator)
    return to_dtype(y, acc, x.dtype).reshape(n, *out_size, o).movedim(-1, 1)


def conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, accumulator: Format | str = "float32",
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1,
           **kwargs: Any) -> torch.Tensor:
    """`F.conv1d` with accumulator arithmetic (see `conv`)."""
    return conv(x, weight, bias, accumulator, stride, padding, dilation, groups, **kwargs)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, accumulator: Format | str = "float32",
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1,
           **kwargs: Any) -> torch.Tensor:
    """`F.conv2d` with accumulator arithmetic (see `conv`)."""
    return conv(x, weight, bias, accumulator, stride, padding, dilation, groups, **kwargs)


def conv3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, accumulator: Format | str = "float32",
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, groups: int = 1,
           **kwargs: Any) -> torch.Tensor:
    """`F.conv3d` with accumulator arithmetic (see `conv`)."""
    return conv(x, weight, bias, accumulator, stride, padding, dilation, groups, **kwargs)


def conv_transpose(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    accumulator: Format | str = "float32",
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    **kwargs: Any,
) -> torch.Tensor:
    """`F.conv_transpose1d/2d/3d` with accumulator arithmetic: the direct convolution of the
    zero-inserted input with the flipped kernel (see the module docstring)."""
    nd = weight.dim() - 2
    stride, padding, output_padding, dilation = (_tuple(v, nd, name) for v, name in (
        (stride, "stride"), (padding, "padding"), (output_padding, "output_padding"), (dilation, "dilation")))
    n, c = x.shape[:2]
    if c != weight.shape[0] or c % groups:
        raise ValueError(f"conv_transpose{nd}d: input {tuple(x.shape)} does not match weight {tuple(weight.shape)} and groups={groups}")
    spatial = x.shape[2:]
    dilated = x.detach().new_zeros(n, c, *[(s - 1) * st + 1 for s, st in zip(spatial, stride)])
    dilated[(slice(None), slice(None)) + tuple(slice(None, None, st) for st in stride)] = x.detach()
    kernel = weight.shape[2:]
    low = [dilation[d] * (kernel[d] - 1) - padding[d] for d in range(nd)]
    high = [low[d] + output_padding[d] for d in range(nd)]
    xp = pad(dilated, low, high)
    cin_g, cout_g = c // groups, weight.shape[1]
    w = weight.detach().reshape(groups, cin_g, cout_g, *kernel).transpose(1, 2).flip(list(range(3, 3 + nd)))
    w = w.reshape(groups * cout_g, cin_g, *kernel)
    return conv(xp, w, bias, accumulator, 1, 0, dilation, groups, **kwargs)


def embedding_bag(
    rows: torch.Tensor,
    weights: torch.Tensor | None,
    accumulator: Format | str = "float32",
    *,
    counts: torch.Tensor | None = None,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
    table_format: Format | None = None,
    weight_format: Format | None = None,
) -> torch.Tensor:
    """Sum of each bag's rows: `rows` (B, L, D) padded with zero rows, `weights` (B, L)
    per-sample weights (None: 1). With `counts` (B,) the bag sizes, the mean: the rounded sum
    divided by the size and rounded once more."""
    acc = _accumulator(accumulator, rounding)
    b, length, _ = rows.shape
    scale = torch.ones(b, length, dtype=rows.dtype, device=rows.device) if weights is None else weights.detach()
    total = dot(scale[:, None, :], rows.detach().transpose(1, 2), acc, rounding, generator, table_format, weight_format)[:, 0]
    if counts is not None:
        total = total / counts.clamp(min=1).to(total.dtype)[:, None]
        total = quantize(total, acc, rounding, generator, out=total)
    return to_dtype(total, acc, rows.dtype)


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
    w = weights.detach().reshape(1, 1, -1).double()
    a = inputs.detach().reshape(1, 1, -1).double()
    if w.shape != a.shape:
        raise ValueError(f"trace_accumulation: {w.shape[2]} weights but {a.shape[2]} inputs")
    exact = torch.cat([torch.zeros(1, dtype=torch.float64), (w * a).cumsum(2)[0, 0]])
    if bias is not None:
        exact = torch.cat([exact, exact[-1:] + bias])
    result = {"exact": exact}
    for fmt in formats:
        acc = _accumulator(fmt, rounding)
        steps = sequential(a, w, acc, rounding, None, trace=True)[:, 0, 0, 0]
        if bias is not None:
            last = add_bias(steps[-1:].clone(), torch.tensor([float(bias)], dtype=torch.float64), acc, rounding, None)
            steps = torch.cat([steps, last])
        result[str(acc)] = steps
    return result

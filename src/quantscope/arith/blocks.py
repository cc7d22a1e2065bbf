"""The block dot product of two block-scaled operands, as block-scaled hardware computes it (OCP MX
v1.0's dot product; NVIDIA's NVFP4 GEMM), with an accumulator format:

1. each product of two element codes, exact;
2. the products' sum within a block, exact (a wide adder tree);
3. that sum times both blocks' stored scales, rounded once onto the accumulator;
4. added to the running sum block after block, each sum rounded onto the accumulator (the order
   of `kernel.sequential`): the blocks of the reduction axis in order for `linear` and `matmul`;
   for convolutions the kernel position outermost, then the channel blocks;
5. the bias added last in the accumulator. Where the operands carry per-tensor scales (NVFP4), the
   result is multiplied by their product in float32 and the bias added in float32 afterwards, as a
   GEMM epilogue's alpha and bias.

Both operands must share the block length; steps 1-3 are exact in float64 where the block sums
fit 53 bits (`block_pair_error` says which pairs do not: MXFP8 E5M2 blocks, for one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch

from ..formats import Format, ScaledFormat
from ..quantization import Blocks, check_rounding
from .kernel import Draws, check_accumulator, product_to_odd, sequential
from .ops import _PATCH_CHUNK, _patches, add_bias, pad

__all__ = ["block_pair_error", "block_linear", "block_matmul", "block_conv"]

def block_pair_error(a: Format, b: Format) -> str | None:
    """Why the block dot product of scaled formats a and b cannot be emulated exactly, or None."""
    if a.scale_sharing == "none" or b.scale_sharing == "none":
        return None
    a, b = cast(ScaledFormat, a), cast(ScaledFormat, b)
    if not a.block or not b.block or a.block != b.block:
        return (f"the block dot product needs both operands in blocks of one length, got {a} and {b} "
                "(a per-channel or per-tensor scale is not a block)")
    span = math.log2(a.block * a.element.max_value * b.element.max_value / (a.element.min_positive * b.element.min_positive))
    if math.ceil(span) + a.scale_significand_bits > 53:
        return (f"a block sum of {a} x {b} products spans {math.ceil(span)} bits, more than float64 holds exactly; "
                "the block dot product is emulated for narrower elements (MXFP8 E4M3, MXFP6, MXFP4, MXINT8, NVFP4, BFP, integers)")
    return None


def _tensor_scale(*blocks: Blocks) -> float:
    return math.prod(b.tensor_scale for b in blocks)


def _dot(ea: torch.Tensor, sa: torch.Tensor, ew: torch.Tensor, sw: torch.Tensor, block: int, acc: Format, rounding: str,
         draws: Draws, first_row: int, total_rows: int, exact_scales: bool) -> torch.Tensor:
    """(M, P, C) codes and scale maps x (O, P, C) -> (M, O): steps 1-4 of the module docstring."""
    c = ea.shape[-1]
    block = min(block, c)  # one short block when the axis is shorter than a block
    padding = (-c) % block
    if padding:
        ea, sa, ew, sw = (torch.nn.functional.pad(t, (0, padding)) for t in (ea, sa, ew, sw))
    m, p, o = ea.shape[0], ea.shape[1], ew.shape[0]
    nb = ea.shape[-1] // block
    sums = torch.einsum("mpjk,opjk->mopj", ea.reshape(m, p, nb, block), ew.reshape(o, p, nb, block))  # exact (block_pair_error)
    scale_a = sa.reshape(m, p, nb, block)[..., 0]
    scale_w = sw.reshape(o, p, nb, block)[..., 0]
    if exact_scales:  # powers of two: the scaled sums are exact
        terms = sums.mul_(scale_a[:, None]).mul_(scale_w[None])
    else:  # sum x scale_a is exact (block_pair_error); x scale_w rounds once, to odd
        terms = product_to_odd(sums * scale_a[:, None], scale_w[None].expand_as(sums))
    terms = terms.reshape(1, m * o, p * nb)
    ones = torch.ones((1, 1, p * nb), dtype=terms.dtype, device=terms.device)
    return sequential(terms, ones, acc, rounding, draws.rows(first_row, total_rows))[0].reshape(m, o)


def _finish(total: torch.Tensor, bias: torch.Tensor | None, acc: Format, rounding: str, generator: torch.Generator | None,
            tensor_scale: float, dtype: torch.dtype) -> torch.Tensor:
    """Step 5: the bias in the accumulator, or the tensor scale then the bias in float32."""
    if tensor_scale == 1.0:
        return add_bias(total, bias, acc, rounding, generator).to(dtype)
    y = total.to(torch.float32) * torch.tensor(tensor_scale, dtype=torch.float32)
    return (y if bias is None else y + bias.detach().to(torch.float32)).to(dtype)


def _rows_step(o: int, p: int, c: int) -> int:
    return max(1, _PATCH_CHUNK // max(o * p * c, 1))


def _check(a: Blocks, w: Blocks, accumulator: Format, rounding: str) -> tuple[Format, int, bool]:
    """(accumulator, block length, whether both scales are powers of two)."""
    check_rounding(rounding)
    acc = check_accumulator(accumulator)
    fa, fw = a.format, w.format
    error = block_pair_error(fa, fw)
    if error is not None:
        raise ValueError(error)
    assert fa.block
    return acc, fa.block, fa.scale == fw.scale == "e8m0"


def block_linear(x: Blocks, weight: Blocks, bias: torch.Tensor | None, accumulator: Format, *, rounding: str = "nearest",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`F.linear` of block-scaled input (blocks along the features) and weight (blocks along each
    row), summed as the module docstring says."""
    acc, block, exact = _check(x, weight, accumulator, rounding)
    k = x.shape[-1]
    ea, sa = x.element_codes().reshape(-1, 1, k), x.scale_map().reshape(-1, 1, k)
    ew, sw = weight.element_codes().reshape(-1, 1, k), weight.scale_map().reshape(-1, 1, k)
    m, o = ea.shape[0], ew.shape[0]
    draws = Draws.draw(rounding, generator)
    step = _rows_step(o, 1, k)
    total = torch.cat([_dot(ea[i:i + step], sa[i:i + step], ew, sw, block, acc, rounding, draws, i * o, m * o, exact)
                       for i in range(0, m, step)]) if m else ea.new_zeros(0, o)
    y = _finish(total, bias, acc, rounding, generator, _tensor_scale(x, weight), dtype)
    return y.reshape(*x.shape[:-1], o)


def block_matmul(a: Blocks, b: Blocks, bias: torch.Tensor | None, accumulator: Format, *, rounding: str = "nearest",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`torch.matmul(a, b)` of block-scaled operands, a's blocks along its last axis and b's along
    its rows (the shared axis), batch dimensions broadcast; 1-D operands as torch.matmul takes them."""
    acc, block, exact = _check(a, b, accumulator, rounding)
    codes_a, scales_a, codes_b, scales_b = a.element_codes(), a.scale_map(), b.element_codes(), b.scale_map()
    if codes_a.dim() == 1:
        codes_a, scales_a = codes_a[None], scales_a[None]
    if codes_b.dim() == 1:
        codes_b, scales_b = codes_b[:, None], scales_b[:, None]
    batch = torch.broadcast_shapes(codes_a.shape[:-2], codes_b.shape[:-2])
    n, k, mcols = codes_a.shape[-2], codes_a.shape[-1], codes_b.shape[-1]

    def lhs(t: torch.Tensor) -> torch.Tensor:
        return t.expand(*batch, n, k).reshape(-1, n, 1, k)

    def rhs(t: torch.Tensor) -> torch.Tensor:
        return t.expand(*batch, k, mcols).reshape(-1, k, mcols).transpose(1, 2).reshape(-1, mcols, 1, k)

    ea, sa, eb, sb = lhs(codes_a), lhs(scales_a), rhs(codes_b), rhs(scales_b)
    draws = Draws.draw(rounding, generator)
    groups, step = ea.shape[0], _rows_step(mcols, 1, k)
    total_rows = groups * n * mcols
    out = torch.stack([torch.cat([_dot(ea[g, i:i + step], sa[g, i:i + step], eb[g], sb[g], block, acc, rounding, draws,
                                       (g * n + i) * mcols, total_rows, exact) for i in range(0, n, step)])
                       for g in range(groups)]) if groups and n else ea.new_zeros(groups, n, mcols)
    out = out.reshape(*batch, n, mcols)
    if len(a.shape) == 1:
        out = out.squeeze(-2)
    if len(b.shape) == 1:
        out = out.squeeze(-1)
    return _finish(out, bias, acc, rounding, generator, _tensor_scale(a, b), dtype)


def block_conv(x: Blocks, weight: Blocks, bias: torch.Tensor | None, accumulator: Format, stride: Sequence[int],
               low: Sequence[int], high: Sequence[int], dilation: Sequence[int], *, rounding: str = "nearest",
               generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A 1-, 2- or 3-D convolution (groups=1) of block-scaled input (blocks along the channels at
    every position) and weight (blocks along the input channels at every kernel position), zero
    padding `low`/`high`; sums as the module docstring says."""
    acc, block, exact = _check(x, weight, accumulator, rounding)
    nd = len(weight.shape) - 2
    o, c, kernel = weight.shape[0], weight.shape[1], tuple(weight.shape[2:])
    if x.shape[1] != c:
        raise ValueError(f"block convolution: input {x.shape} does not match weight {weight.shape} (groups=1 only)")
    codes, scales = pad(x.element_codes(), low, high), pad(x.scale_map(), low, high)
    taps = math.prod(kernel)
    ew = weight.element_codes().reshape(o, c, taps).transpose(1, 2)
    sw = weight.scale_map().reshape(o, c, taps).transpose(1, 2)
    out_size = [(codes.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1 for d in range(nd)]
    n, positions = codes.shape[0], math.prod(out_size)
    draws = Draws.draw(rounding, generator)
    step = max(1, _PATCH_CHUNK // max(positions * c * taps, 1))

    def windows(t: torch.Tensor) -> torch.Tensor:  # (N*L, taps, C): kernel position outer, channels inner
        return _patches(t, kernel, stride, dilation, 1)[0].reshape(-1, c, taps).transpose(1, 2)

    parts = [_dot(windows(codes[n0:n0 + step]), windows(scales[n0:n0 + step]), ew, sw, block, acc, rounding, draws,
                  n0 * positions * o, n * positions * o, exact) for n0 in range(0, n, step)]
    total = torch.cat(parts) if parts else codes.new_zeros(0, o)
    y = _finish(total, bias, acc, rounding, generator, _tensor_scale(x, weight), dtype)
    return y.reshape(n, *out_size, o).movedim(-1, 1)

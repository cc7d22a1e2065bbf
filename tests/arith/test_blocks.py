"""The block dot product (quantscope.arith.blocks) against an exact reference in Fractions: block
sums of element products, times both block scales, rounded onto the accumulator and accumulated
block after block (kernel position outer for convolutions), bias last."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from exact import round_fixed, round_grid

import quantscope as qs
from quantscope.arith.blocks import block_conv, block_linear, block_matmul, block_pair_error
from quantscope.formats import FixedPoint
from quantscope.quantization import quantize_blocks

PAIRS = [("mxfp4", "mxfp4"), ("mxfp8<e4m3>", "mxfp8<e4m3>"), ("mxint8", "mxfp6<e2m3>"), ("nvfp4<tensor_scale=off>", "nvfp4<tensor_scale=off>"),
         ("int4<group=32>", "int8<group=32>"), ("bfp<8,block=16>", "bfp<6,block=16>")]
ACCUMULATORS = ["float<5,10>", "bf16", "fixed<20,8>"]


def _q(acc, mode):
    def q(v: Fraction) -> Fraction:
        if isinstance(acc, FixedPoint):
            return round_fixed(v, acc, mode, float32=False)
        hi = Fraction(acc.max_value)
        return round_grid(v, acc.man, acc.emin, -hi, hi, mode, acc.subnormals)
    return q


def _reference(rows_a, rows_w, block, acc, mode, bias=None):
    """rows: lists of (codes, scales) per output row/column, each a list over the reduction axis
    already ordered block by block (each block's values contiguous, blocks of `block`)."""
    q = _q(acc, mode)
    out = np.zeros((len(rows_a), len(rows_w)))
    for m, (ca, sa) in enumerate(rows_a):
        for o, (cw, sw) in enumerate(rows_w):
            total = Fraction(0)
            for start in range(0, len(ca), block):
                s = sum((Fraction(a) * Fraction(w) for a, w in zip(ca[start:start + block], cw[start:start + block])), Fraction(0))
                total = q(total + q(s * Fraction(sa[start]) * Fraction(sw[start])))
            if bias is not None:
                total = q(total + Fraction(float(bias[o])))
            out[m, o] = float(total)
    return out


def _rows(b, dim_last=True):
    codes, scales = b.element_codes(), b.scale_map()
    if not dim_last:
        codes, scales = codes.t(), scales.t()
    return [(c.tolist(), s.tolist()) for c, s in zip(codes.reshape(-1, codes.shape[-1]), scales.reshape(-1, codes.shape[-1]))]


@pytest.mark.parametrize("mode", ["nearest", "toward_zero", "floor"])
@pytest.mark.parametrize("acc", ACCUMULATORS)
@pytest.mark.parametrize("fx,fw", PAIRS)
def test_block_linear_equals_the_exact_reference(fx, fw, acc, mode):
    g = torch.Generator().manual_seed(len(fx) * 7 + len(acc) + len(mode))
    x = torch.randn(4, 72, generator=g) * torch.exp2(torch.randint(-3, 3, (4, 72), generator=g).float())
    w = torch.randn(3, 72, generator=g)
    bias = torch.randn(3, generator=g)
    xb, wb = quantize_blocks(x, fx, rounding=mode), quantize_blocks(w, fw, rounding=mode)
    accf = qs.parse_format(acc)
    got = block_linear(xb, wb, bias, accf, rounding=mode, dtype=torch.float64)
    block = qs.parse_format(fx).block
    want = _reference(_rows(xb), _rows(wb), block, accf, mode, bias)
    np.testing.assert_array_equal(got.numpy(), want)


def test_block_matmul_and_conv_sum_in_the_documented_order():
    acc = qs.parse_format("float<5,6>")
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(2, 3, 40, generator=g), torch.randn(40, 4, generator=g)
    ab, bb = quantize_blocks(a, "mxfp8<e4m3>"), quantize_blocks(b, "mxfp8<e4m3>", axis=0)
    got = block_matmul(ab, bb, None, acc, dtype=torch.float64)
    want = _reference(_rows(ab), _rows(bb, dim_last=False), 32, acc, "nearest").reshape(2, 3, 4)
    np.testing.assert_array_equal(got.numpy(), want)

    x, w = torch.randn(1, 40, 3, 3, generator=g), torch.randn(2, 40, 2, 2, generator=g)
    xb, wb = quantize_blocks(x, "mxfp4", axis=1), quantize_blocks(w, "mxfp4", axis=1)
    got = block_conv(xb, wb, None, acc, (1, 1), (0, 0), (0, 0), (1, 1), dtype=torch.float64)
    xc, xs, wc, ws = xb.element_codes(), xb.scale_map(), wb.element_codes(), wb.scale_map()
    q = _q(acc, "nearest")
    for o in range(2):
        for i in range(2):
            for j in range(2):
                total = Fraction(0)
                for ki in range(2):  # kernel position outer, channel blocks inner
                    for kj in range(2):
                        for start in (0, 32):
                            chans = range(start, min(start + 32, 40))
                            s = sum((Fraction(xc[0, c, i + ki, j + kj].item()) * Fraction(wc[o, c, ki, kj].item()) for c in chans), Fraction(0))
                            total = q(total + q(s * Fraction(xs[0, start, i + ki, j + kj].item()) * Fraction(ws[o, start, ki, kj].item())))
                assert got[0, o, i, j].item() == float(total)


def test_nvfp4_tensor_scales_multiply_the_result_in_float32_before_the_bias():
    g = torch.Generator().manual_seed(6)
    x, w, bias = torch.randn(3, 32, generator=g) * 40, torch.randn(2, 32, generator=g) / 9, torch.randn(2, generator=g)
    acc = qs.parse_format("float<8,23>")
    xb, wb = quantize_blocks(x, "nvfp4"), quantize_blocks(w, "nvfp4")
    assert xb.tensor_scale != 1.0 and wb.tensor_scale != 1.0
    got = block_linear(xb, wb, bias, acc)
    unscaled = block_linear(replace(xb, tensor_scale=1.0), replace(wb, tensor_scale=1.0), None, acc, dtype=torch.float64)
    alpha = torch.tensor(xb.tensor_scale, dtype=torch.float32) * torch.tensor(wb.tensor_scale, dtype=torch.float32)
    assert torch.equal(got, unscaled.float() * alpha + bias)


def test_pairs_the_block_dot_product_cannot_emulate_are_refused():
    assert block_pair_error(qs.parse_format("mxfp4"), qs.parse_format("nvfp4")) is not None  # blocks of 32 and 16
    assert "spans" in block_pair_error(qs.parse_format("mxfp8<e5m2>"), qs.parse_format("mxfp8<e5m2>"))
    assert "per-channel" in block_pair_error(qs.parse_format("int8<channel>"), qs.parse_format("int8<channel>"))
    assert block_pair_error(qs.parse_format("mxfp8<e4m3>"), qs.parse_format("mxfp6<e3m2>")) is None

"""Accumulator arithmetic against a scalar reference in exact rational arithmetic."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch

import quantscope as qs
from quantscope import FixedPoint, MiniFloat, arith, parse_format, quantize


# ----------------------------------------------------------------- independent scalar reference
def ref_round(v: Fraction, fmt) -> Fraction:
    """Round an exact rational onto fmt, nearest with ties to even, saturating or wrapping."""
    if isinstance(fmt, FixedPoint):
        scale = Fraction(2) ** fmt.frac
        k = round(v * scale)  # Python rounds Fractions half to even
        if fmt.overflow == "wrap":
            k = (k - fmt.k_min) % 2**fmt.bits + fmt.k_min
        else:
            k = min(max(k, fmt.k_min), fmt.k_max)
        return Fraction(k) / scale
    assert isinstance(fmt, MiniFloat)
    if v == 0:
        return Fraction(0)
    sign, a = (1 if v > 0 else -1), abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    if e < fmt.emin:
        quantum = Fraction(2) ** (fmt.emin - (fmt.man if fmt.subnormals else 0))
    else:
        quantum = Fraction(2) ** (e - fmt.man)
    r = round(a / quantum) * quantum
    return sign * min(r, Fraction(fmt.max_value))


def ref_dot(ws, xs, bias, fmt) -> float:
    acc = Fraction(0)
    for w, x in zip(ws, xs):
        acc = ref_round(acc + ref_round(Fraction(w) * Fraction(x), fmt), fmt)
    if bias is not None:
        acc = ref_round(acc + Fraction(bias), fmt)
    return float(acc)


def ref_linear(x, w, b, fmt) -> np.ndarray:
    x, w = x.double().numpy(), w.double().numpy()
    out = np.zeros((x.shape[0], w.shape[0]))
    for n, o in itertools.product(range(x.shape[0]), range(w.shape[0])):
        out[n, o] = ref_dot(w[o], x[n], None if b is None else float(b[o]), fmt)
    return out


def ref_conv2d(x, w, b, fmt, stride, padding, dilation, groups) -> np.ndarray:
    """Explicit loops; reduction order: input channel, kernel row, kernel column."""
    x, w = x.double().numpy(), w.double().numpy()
    n_, c_, h_, w_ = x.shape
    o_, cg, kh, kw = w.shape
    hout = (h_ + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wout = (w_ + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    og = o_ // groups
    out = np.zeros((n_, o_, hout, wout))
    for n, o, i, j in itertools.product(range(n_), range(o_), range(hout), range(wout)):
        g = o // og
        ws, xs = [], []
        for c in range(cg):
            for r in range(kh):
                for s in range(kw):
                    y, z = i * stride - padding + r * dilation, j * stride - padding + s * dilation
                    inside = 0 <= y < h_ and 0 <= z < w_
                    ws.append(w[o, c, r, s])
                    xs.append(x[n, g * cg + c, y, z] if inside else 0.0)
        out[n, o, i, j] = ref_dot(ws, xs, None if b is None else float(b[o]), fmt)
    return out


# ---------------------------------------------------------------------------------------- tests
ACCUMULATORS = ["fixed<12,4>", "fixed<10,6>", "fixed<9,3,overflow=wrap>", "float<4,3>", "float<5,10>",
                "float<3,2,special=none>", "float<4,2,subnormals=off>", "fixed<20,6>", "fixed<10,6,overflow=wrap>"]
OPERANDS = [("fixed<6,3>", "fixed<6,3>"), ("float32", "float32"), ("float<4,3>", "fixed<8,4>")]


def _operands(shape_x, shape_w, wf, xf, seed):
    g = torch.Generator().manual_seed(seed)
    x = quantize(torch.randn(shape_x, generator=g) * 2, xf)
    w = quantize(torch.randn(shape_w, generator=g) * 0.7, wf)
    b = quantize(torch.randn(shape_w[0], generator=g), wf)
    return x, w, b


def _hints(wf, xf):
    return {"weight_format": parse_format(wf), "data_format": parse_format(xf)}


@pytest.mark.parametrize("wf,xf", OPERANDS)
@pytest.mark.parametrize("acc", ACCUMULATORS)
def test_linear_matches_scalar_reference(acc, wf, xf):
    x, w, b = _operands((3, 17), (4, 17), wf, xf, seed=hash((acc, wf)) % 1000)
    got = arith.linear(x, w, b, acc, **_hints(wf, xf))
    want = ref_linear(x, w, b, parse_format(acc))
    np.testing.assert_array_equal(got.double().numpy(), want)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (1, 1, 1, 2), (2, 0, 1, 4)])
@pytest.mark.parametrize("acc", ["fixed<12,4>", "fixed<9,3,overflow=wrap>", "float<4,3>", "float<5,10>", "fixed<20,6>"])
def test_conv2d_matches_scalar_reference(acc, stride, padding, dilation, groups):
    x, w, b = _operands((2, 4, 6, 6), (4, 4 // groups, 3, 3), "fixed<6,3>", "fixed<6,3>", seed=stride + 7 * padding)
    got = arith.conv2d(x, w, b, acc, stride, padding, dilation, groups, **_hints("fixed<6,3>", "fixed<6,3>"))
    want = ref_conv2d(x, w, b, parse_format(acc), stride, padding, dilation, groups)
    assert got.shape == torch.nn.functional.conv2d(x, w, b, stride, padding, dilation, groups).shape
    np.testing.assert_array_equal(got.double().numpy(), want)


def test_conv1d_matches_reference_through_conv2d():
    x, w, b = _operands((2, 3, 9), (4, 3, 3), "fixed<6,3>", "fixed<6,3>", seed=5)
    got = arith.conv1d(x, w, b, "float<4,3>", stride=2, padding=1)
    want = ref_conv2d(x.unsqueeze(2), w.unsqueeze(2), b, parse_format("float<4,3>"), 1, 0, 1, 1)
    # reference for 1-D: recompute with explicit stride/padding on the width axis
    xs = torch.nn.functional.pad(x, (1, 1))
    want = ref_conv2d(xs.unsqueeze(2), w.unsqueeze(2), b, parse_format("float<4,3>"), 1, 0, 1, 1)[:, :, 0, ::2]
    np.testing.assert_array_equal(got.double().numpy(), want)


def test_float32_accumulator_is_float32_sequential_summation():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 300, generator=g)
    w = torch.randn(3, 300, generator=g)
    got = arith.linear(x, w, None, "float<8,23>")
    xn, wn = x.numpy(), w.numpy()
    want = np.zeros((5, 3), dtype=np.float32)
    for n, o in itertools.product(range(5), range(3)):
        s = np.float32(0)
        for k in range(300):
            s = np.float32(s + np.float32(xn[n, k] * wn[o, k]))
        want[n, o] = s
    np.testing.assert_array_equal(got.numpy(), want)
    assert not np.array_equal(want, (x.double() @ w.double().t()).float().numpy())  # order matters


def test_fast_path_equals_the_sequential_loop():
    wf, xf = parse_format("fixed<8,5>"), parse_format("fixed<8,4>")
    x, w, _ = _operands((64, 200), (30, 200), "fixed<8,5>", "fixed<8,4>", seed=3)
    for acc in ["fixed<24,9>", "fixed<14,9>", "fixed<12,9,overflow=wrap>", "ufixed<24,9>", "ufixed<14,9>"]:
        a = parse_format(acc)
        fast = arith.dot(x[None], w[None], a, "nearest", None, wf, xf)[0]
        slow = arith.sequential(x.double()[None], w.double()[None], a, "nearest", None)[0]
        assert torch.equal(fast, slow), acc
    # the narrow saturating accumulator really saturates somewhere, so both branches ran
    assert (arith.sequential(x.double()[None], w.double()[None], parse_format("fixed<14,9>"), "nearest", None).abs() == parse_format("fixed<14,9>").max_value).any()


def test_unsigned_accumulator_saturates_at_zero_on_the_fast_path():
    """An unsigned accumulator clamps every negative product and partial sum to 0 (issue 14's
    example: the exact fast path used to return [-8, 8, 0])."""
    x = torch.tensor([[1.0, 1.0]])
    w = torch.tensor([[-8.0, 0.0], [8.0, 0.0], [2.0, -2.0]])
    fmt = parse_format("fixed<8,0>")
    got = arith.linear(x, w, None, "ufixed<8,0>", weight_format=fmt, data_format=fmt)
    want = [ref_dot(w[o].tolist(), x[0].tolist(), None, parse_format("ufixed<8,0>")) for o in range(3)]
    assert got[0].tolist() == want == [0.0, 8.0, 2.0]


def test_swamping_in_a_narrow_float_accumulator():
    # 1 + 1000 * 0.01: with 3 significant bits each 0.01 is below half an ulp of 1 and is lost
    w = torch.ones(1, 1001)
    x = torch.cat([torch.ones(1), torch.full((1000,), 0.01)]).reshape(1, -1)
    assert arith.linear(x, w, None, "float<5,2>").item() == 1.0
    assert arith.linear(x, w, None, "float<8,23>").item() == pytest.approx(11.0, abs=1e-3)


def test_saturation_and_wraparound_of_a_fixed_running_sum():
    # 100 products of +2 then 50 of -1: exact 150; saturating at 127 then -50 gives 77
    w = torch.ones(1, 150)
    x = torch.cat([torch.full((100,), 2.0), torch.full((50,), -1.0)]).reshape(1, -1)
    assert arith.linear(x, w, None, "fixed<8,0>").item() == 77.0
    # wrapping is modular: 150 mod 256 in [-128, 128) is -106, whatever the order
    assert arith.linear(x, w, None, "fixed<8,0,overflow=wrap>").item() == -106.0
    assert arith.linear(x.flip(1), w, None, "fixed<8,0,overflow=wrap>").item() == -106.0


def test_trace_accumulation_records_every_step():
    w = torch.ones(6)
    x = torch.tensor([64.0, 1, 1, 1, 1, 1])
    t = qs.trace_accumulation(w, x, ["fixed<8,0>", "float<5,2>"], bias=2.0)
    assert t["exact"].tolist() == [0, 64, 65, 66, 67, 68, 69, 71]
    assert t["fixed<8,0>"].tolist() == [0, 64, 65, 66, 67, 68, 69, 71]
    assert t["float<5,2>"].tolist() == [0, 64, 64, 64, 64, 64, 64, 64]  # 1 is half an ulp of 64: ties to even


def test_bad_accumulators_are_rejected():
    x, w = torch.ones(1, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="adaptive"):
        arith.linear(x, w, None, "fixed<16,auto>")
    with pytest.raises(ValueError, match="binary accumulator"):
        arith.linear(x, w, None, "binary")
    with pytest.raises(ValueError, match="does not match weight"):
        arith.linear(torch.ones(1, 4), w, None, "fixed<16,4>")

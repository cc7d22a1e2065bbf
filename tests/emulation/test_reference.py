"""Emulated modern ops equal hand-written quantized computations bit for bit, and accumulator
arithmetic in attention and transposed convolutions equals an exact scalar reference."""

from __future__ import annotations

import copy
import io
import itertools
import math
import pickle
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

import quantscope as qs
from quantscope import PrecisionPlan, arith, models, parse_format, quantize

W, D = "fixed<8,6>", "fixed<8,4>"


def q(t, fmt):
    return quantize(t, fmt)


def lin(x, layer_w, layer_b):
    return F.linear(q(x, D), q(layer_w, W), None if layer_b is None else q(layer_b, W))


def test_vit_block_equals_the_hand_written_quantized_block():
    torch.manual_seed(0)
    block = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu", batch_first=True, norm_first=True).eval()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        got = qs.emulate(block, PrecisionPlan.uniform(weights=W, data=D))(x)
        attn = block.self_attn
        h = block.norm1(x).transpose(0, 1)  # (L, N, E), as nn.MultiheadAttention computes
        qh, kh, vh = lin(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
        heads = [t.reshape(5, 2 * 4, 4).transpose(0, 1) for t in (qh, kh, vh)]
        scores = torch.matmul(q(heads[0], D), q(heads[1].transpose(-2, -1), D)) * (1.0 / math.sqrt(4))
        values = torch.matmul(q(torch.softmax(scores, -1), D), q(heads[2], D))
        out = lin(values.transpose(0, 1).reshape(10, 16), attn.out_proj.weight, attn.out_proj.bias).view(5, 2, 16)
        x1 = x + out.transpose(0, 1)
        want = x1 + lin(F.gelu(lin(block.norm2(x1), block.linear1.weight, block.linear1.bias)), block.linear2.weight, block.linear2.bias)
    assert torch.equal(got, want)


def test_lstm_equals_the_hand_written_quantized_recurrence():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, batch_first=True).eval()
    x = torch.randn(2, 4, 3)
    with torch.no_grad():
        got, (h_n, c_n) = qs.emulate(lstm, PrecisionPlan.uniform(weights=W, data=D))(x)
        xi = lin(x.transpose(0, 1), lstm.weight_ih_l0, lstm.bias_ih_l0)
        h = c = torch.zeros(2, 5)
        steps = []
        for t in range(4):
            i, f, g, o = (xi[t] + lin(h, lstm.weight_hh_l0, lstm.bias_hh_l0)).chunk(4, -1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            steps.append(h)
    assert torch.equal(got, torch.stack(steps).transpose(0, 1)) and torch.equal(h_n[0], h) and torch.equal(c_n[0], c)


# --------------------------------------------------------------- exact scalar reference
def ref_round(v: Fraction, fmt) -> Fraction:
    """Nearest (ties to even) onto a saturating float or fixed format, in exact arithmetic."""
    if isinstance(fmt, qs.FixedPoint):
        k = min(max(round(v * 2**fmt.frac), fmt.k_min), fmt.k_max)
        return Fraction(k, 2**fmt.frac) if fmt.frac >= 0 else Fraction(k * 2 ** -fmt.frac)
    if v == 0:
        return Fraction(0)
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    e -= Fraction(2) ** e > a
    quantum = Fraction(2) ** (max(e, fmt.emin) - fmt.man)
    return (1 if v > 0 else -1) * min(round(a / quantum) * quantum, Fraction(fmt.max_value))


def ref_dot(ws, xs, fmt, bias=None) -> float:
    acc = Fraction(0)
    for w, x in zip(ws, xs):
        acc = ref_round(acc + ref_round(Fraction(float(w)) * Fraction(float(x)), fmt), fmt)
    if bias is not None:
        acc = ref_round(acc + Fraction(float(bias)), fmt)
    return float(acc)


class Attention(nn.Module):
    def forward(self, q_, k, v):
        return F.scaled_dot_product_attention(q_, k, v)


def test_attention_accumulators_equal_exact_arithmetic():
    gen = torch.Generator().manual_seed(2)
    qq, kk, vv = (torch.randn(1, 1, n, 6, generator=gen) for n in (3, 4, 4))
    acc = parse_format("float<4,3>")
    model = qs.emulate(Attention(), PrecisionPlan.uniform(data=D, accumulator=acc))
    with torch.no_grad():
        got = model(qq, kk, vv)
    qd, kd, vd = (q(t, D)[0, 0] for t in (qq, kk, vv))
    scores = torch.tensor([[ref_dot(qd[i], kd[j], acc) for j in range(4)] for i in range(3)]) * (1.0 / math.sqrt(6))
    p = q(torch.softmax(scores, -1), D)
    want = torch.tensor([[ref_dot(p[i], vd[:, e], acc) for e in range(6)] for i in range(3)])
    assert torch.equal(got[0, 0], want)
    assert not torch.equal(got, F.scaled_dot_product_attention(q(qq, D), q(kk, D), q(vv, D)))  # rounding really happened


def test_transposed_and_3d_convolution_accumulators_equal_exact_arithmetic():
    gen = torch.Generator().manual_seed(3)
    acc = parse_format("float<4,3>")
    x = q(torch.randn(1, 4, 3, 3, generator=gen), D)
    w = q(torch.randn(4, 3, 3, 3, generator=gen), W)  # ConvTranspose2d(4, 6, 3, groups=2): (C_in, C_out/g, k, k)
    got = arith.conv_transpose(x, w, None, acc, stride=2, padding=1, output_padding=1, groups=2)
    assert got.shape == F.conv_transpose2d(x, w, None, 2, 1, 1, 2).shape == (1, 6, 6, 6)
    want = torch.zeros_like(got)
    for o, i, j in itertools.product(range(6), range(6), range(6)):  # direct definition: scatter of every input
        g, oc = divmod(o, 3)
        # in the kernel's order: input channel, then input row and column (the equivalent direct
        # convolution's kernel positions, flipped); inserted zeros and padding add nothing
        terms = [(w[c, oc, r, s], x[0, c, a, b]) for c in range(2 * g, 2 * g + 2) for a in range(3) for b in range(3)
                 for r in range(3) for s in range(3) if a * 2 - 1 + r == i and b * 2 - 1 + s == j]
        want[0, o, i, j] = ref_dot([t[0] for t in terms], [t[1] for t in terms], acc) if terms else 0.0
    assert torch.equal(got, want)
    x3 = q(torch.randn(1, 2, 3, 4, 4, generator=gen), D)
    w3 = q(torch.randn(3, 2, 2, 3, 3, generator=gen), W)
    got3 = arith.conv3d(x3, w3, None, "float<4,3>", padding=(1, 0, 0))
    xp = F.pad(x3, (0, 0, 0, 0, 1, 1))
    want3 = torch.zeros_like(got3)
    for o, d, i, j in itertools.product(*(range(n) for n in got3.shape[1:])):
        window = xp[0, :, d : d + 2, i : i + 3, j : j + 3]
        want3[0, o, d, i, j] = ref_dot(w3[o].flatten(), window.flatten(), parse_format("float<4,3>"))
    assert torch.equal(got3, want3)


def test_emulated_models_pickle_save_and_deepcopy():
    model = models.create("resnet20", seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    qmodel = qs.emulate(model, PrecisionPlan.uniform(weights="fixed<6,auto>", data="fixed<8,auto>"), calibration=x)
    with torch.no_grad():
        want = qmodel(x)
        buf = io.BytesIO()
        torch.save(qmodel, buf)
        copies = [pickle.loads(pickle.dumps(qmodel)), copy.deepcopy(qmodel), torch.load(io.BytesIO(buf.getvalue()), weights_only=False)]
        for c in copies:
            assert type(c) is qs.EmulatedModel and torch.equal(c(x), want)
    assert list(qmodel.state_dict()) == list(model.state_dict())
    fresh = qs.emulate(models.create("resnet20", seed=1).eval(), qmodel.plan, calibration=x)
    fresh.load_state_dict(model.state_dict())  # float state dicts load into emulated models
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))

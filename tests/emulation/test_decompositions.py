"""The decompositions of attention and recurrent layers compute what PyTorch computes: with
float<8,23> (whose values are exactly float32's) every op runs through the emulator, and the
result matches PyTorch's fused kernels to float32 rounding, for every option they take."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import quantscope as qs

EXACT = qs.PrecisionPlan.uniform(weights="float<8,23>", data="float<8,23>")


def _same(model, *inputs, **kwargs):
    model = model.eval()
    with torch.no_grad():
        want = model(*inputs, **kwargs)
        emulated = qs.emulate(model, EXACT, calibration=inputs)  # traced on the positional inputs
        got = emulated(*inputs, **kwargs)
    assert emulated.ops and emulated.emulated
    for g, w in zip(_flat(got), _flat(want)):
        torch.testing.assert_close(g, w, rtol=2e-5, atol=2e-6)


def _flat(x):
    if isinstance(x, torch.Tensor):
        return [x]
    return [t for item in x if item is not None for t in _flat(item)]


class Attention(nn.Module):
    def __init__(self, **options):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, **options)

    def forward(self, q, k, v, **kwargs):
        return self.mha(q, k, v, **kwargs)


@pytest.mark.parametrize("options,kwargs", [
    ({"batch_first": True}, {}),
    ({"batch_first": True}, {"need_weights": True, "average_attn_weights": False}),
    ({"kdim": 6, "vdim": 5, "batch_first": True}, {}),
    ({"bias": False, "add_bias_kv": True, "add_zero_attn": True}, {}),
])
def test_multi_head_attention_cross_attention_and_options(options, kwargs):
    torch.manual_seed(1)
    first = options.get("batch_first", False)
    shape = (lambda n, l, e: (n, l, e)) if first else (lambda n, l, e: (l, n, e))
    q = torch.randn(shape(2, 4, 8))
    k = torch.randn(shape(2, 5, options.get("kdim", 8)))
    v = torch.randn(shape(2, 5, options.get("vdim", 8)))
    mask = torch.tensor([[False, False, True, False, False], [False, False, False, False, True]])
    attn_mask = torch.zeros(4, 5).masked_fill_(torch.eye(4, 5, dtype=torch.bool), -1.5)
    _same(Attention(**options), q, k, v, key_padding_mask=mask, attn_mask=attn_mask, **kwargs)


def test_multi_head_attention_self_attention_packed_and_unbatched():
    x = torch.randn(3, 4, 8)
    _same(Attention(batch_first=True), x, x, x)
    y = torch.randn(4, 8)
    _same(Attention(), y, y, y)


class SDPA(nn.Module):
    def __init__(self, **options):
        super().__init__()
        self.options = options

    def forward(self, q, k, v, mask=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **self.options)


@pytest.mark.parametrize("options,mask", [
    ({}, None), ({"is_causal": True}, None), ({"scale": 0.3}, "bool"), ({}, "float"), ({"enable_gqa": True}, None),
])
def test_scaled_dot_product_attention_masks_scales_and_grouped_queries(options, mask):
    torch.manual_seed(2)
    q = torch.randn(2, 4, 5, 6)
    heads = 2 if options.get("enable_gqa") else 4
    k, v = torch.randn(2, heads, 5, 6), torch.randn(2, heads, 5, 6)
    m = None if mask is None else (torch.rand(5, 5) > 0.3) | torch.eye(5, dtype=torch.bool) if mask == "bool" else torch.randn(5, 5)
    _same(SDPA(**options), q, k, v, m)


@pytest.mark.parametrize("layer,x", [
    (nn.LSTM(3, 5, num_layers=2, bidirectional=True), torch.randn(6, 2, 3)),
    (nn.LSTM(3, 5, proj_size=2, batch_first=True), torch.randn(2, 6, 3)),
    (nn.GRU(3, 5, num_layers=2, batch_first=True, bidirectional=True), torch.randn(2, 6, 3)),
    (nn.RNN(3, 5, nonlinearity="relu"), torch.randn(6, 2, 3)),
    (nn.RNN(3, 5, bias=False), torch.randn(6, 3)),
])
def test_recurrent_layers_in_every_configuration(layer, x):
    _same(layer, x)


@pytest.mark.parametrize("cell", [nn.LSTMCell(3, 5), nn.GRUCell(3, 5), nn.RNNCell(3, 5, nonlinearity="relu")])
def test_recurrent_cells(cell):
    _same(cell, torch.randn(2, 3))
    _same(cell, torch.randn(3))


@pytest.mark.parametrize("average", [True, False])
def test_returned_attention_weights_are_the_softmax_not_the_values_operand(average):
    """The values op rounds P in place only where the caller does not return it: with P's format
    coarse, the weights MHA returns are still the softmax of the (rounded) scores."""
    torch.manual_seed(3)
    model = Attention(batch_first=True).eval()
    x = torch.randn(2, 6, 8)
    plan = qs.PrecisionPlan(default=qs.LayerPrecision(), overrides={"*.values": {"data": "fixed<3,1>"}})
    with torch.no_grad():
        emulated = qs.emulate(model, plan)
        out, weights = emulated(x, x, x, need_weights=True, average_attn_weights=average)
        want_out, want_weights = model(x, x, x, need_weights=True, average_attn_weights=average)
    torch.testing.assert_close(weights, want_weights, rtol=2e-5, atol=2e-6)  # scores and softmax stay float
    assert not torch.allclose(out, want_out, atol=1e-3)  # while the values op saw P on fixed<3,1>
    rounded = qs.quantize(want_weights, "fixed<3,1>")
    assert not torch.equal(weights, rounded)

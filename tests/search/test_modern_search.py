"""The evaluator, Judd's greedy search, sensitivity and Sakr's bounds on modern ops: BatchNorm
buffers, grouped, depthwise and 1-D convolutions, attention and recurrent products."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import quantscope as qs
from quantscope import data, models, search


def _dataset(x: torch.Tensor, classes: int = 10) -> data.Dataset:
    """A dataset holding exactly `x` (uint8 images normalized back to x's scale, unit mode)."""
    images = x.clamp(0, 1).mul(255).round().to(torch.uint8)
    labels = torch.arange(len(x)) % classes
    return data.Dataset("toy", "test", images, labels, tuple(str(i) for i in range(classes)), (0.0,) * x.shape[1], (1.0,) * x.shape[1],
                        normalize="unit")


def test_the_evaluator_fingerprints_models_with_zero_dimensional_buffers():
    model = models.create("resnet20", seed=0).eval()
    assert any(b.dim() == 0 for b in model.buffers())  # BatchNorm's num_batches_tracked
    ds = _dataset(torch.rand(6, 3, 32, 32))
    ev = search.Evaluator(model, ds, costs=("traffic", "energy_uj"), calibration=ds.tensors()[0])
    point = ev(qs.PrecisionPlan.uniform(weights="fixed<6,auto>", data="fixed<8,auto>"))
    assert 0 <= point.accuracy <= 1 and set(point.costs) == {"traffic", "energy_uj"}
    assert len(ev.fingerprint) == 64


class DepthwiseAttention(nn.Module):
    """1-D convolutions (one grouped, one depthwise), then self-attention over positions."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 3, padding=1, groups=1)
        self.grouped = nn.Conv1d(8, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv1d(8, 8, 3, padding=1, groups=8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = self.depthwise(torch.relu(self.grouped(torch.relu(self.conv(x.flatten(2)))))).transpose(1, 2)
        return self.head(self.attn(h, h, h, need_weights=False)[0].mean(1))


def test_greedy_and_sensitivity_run_on_depthwise_one_d_and_attention_ops():
    torch.manual_seed(0)
    model = DepthwiseAttention().eval()
    ds = _dataset(torch.rand(12, 3, 4, 4), classes=4)
    ev = search.Evaluator(model, ds, costs=("traffic",), calibration=ds.tensors()[0])
    layers = [o.name for o in qs.layers(model, ds.tensors(limit=1)[0])]
    assert layers == ["conv", "grouped", "depthwise", "attn.in_proj", "attn.scores", "attn.values", "attn.out_proj", "head"]
    res = search.greedy(ev, layers, [(4, 4)] * len(layers), ev.float_accuracy, budget=search.Budget(20))
    assert len(res.points) == 20 and not res.complete
    lowered = {name for p in res.points for name in layers if p.plan.for_layer(name).data.bits < 8}
    assert lowered == set(layers)  # the descent tried every op, attention products included
    sens = search.sensitivity(ev, ["depthwise", "attn.values"], search.data_plan(layers, [(8, 8)] * len(layers)),
                              weight_fraction_bits=[2], data_integer_bits=[2], data_fraction_bits=[1])
    assert [(p.labels["layer"], p.labels["what"]) for p in sens.points] == [
        ("depthwise", "weight fraction bits"), ("depthwise", "data integer bits"), ("depthwise", "data fraction bits"),
        ("attn.values", "weight fraction bits"), ("attn.values", "data integer bits"), ("attn.values", "data fraction bits")]


def test_bounds_cover_grouped_convolutions_with_per_example_gradients():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv1d(2, 4, 3, groups=2), nn.ReLU(), nn.Conv1d(4, 4, 3, groups=4), nn.Flatten(), nn.Linear(4 * 4, 3))
    x = torch.randn(5, 2, 8)
    b = search.sakr_bounds(net, x)
    scales = {r.name: r for r in b.ranges}
    names = ["0", "2", "4"]
    e_a = e_w = 0.0
    for n in range(len(x)):
        acts = {}
        hooks = [net.get_submodule(k).register_forward_pre_hook(lambda m, a, k=k: acts.__setitem__(k, a[0])) for k in names]  # noqa: B023
        xi = x[n : n + 1].clone().requires_grad_(True)
        z = net(xi)[0]
        for h in hooks:
            h.remove()
        y = int(z.argmax())
        for i in range(3):
            if i == y:
                continue
            grads = torch.autograd.grad(z[i] - z[y], [acts[k] for k in names] + [net.get_submodule(k).weight for k in names], retain_graph=True)
            v2 = float((z[i] - z[y]).detach()) ** 2
            e_a += sum(float((scales[k].data_scale * g).square().sum()) for k, g in zip(names, grads[:3])) / v2
            e_w += sum(float((scales[k].weight_scale * g).square().sum()) for k, g in zip(names, grads[3:])) / v2
    assert b.e_a == pytest.approx(e_a / len(x), rel=1e-6) and b.e_w == pytest.approx(e_w / len(x), rel=1e-6)


def test_a_recurrent_weight_is_one_noise_source_summed_over_time_steps():
    torch.manual_seed(2)
    model = models.create("lstm-mnist", width=0.125, seed=0).eval()
    x = torch.rand(3, 1, 28, 28)
    b = search.sakr_bounds(model, x)
    scales = {r.name: r for r in b.ranges}
    weights = {"rnn.l0.ih": model.rnn.weight_ih_l0, "rnn.l0.hh": model.rnn.weight_hh_l0, "fc": model.fc.weight}
    e_w = 0.0
    for n in range(len(x)):
        z = model(x[n : n + 1])[0]
        y = int(z.argmax())
        for i in range(10):
            if i != y:
                grads = torch.autograd.grad(z[i] - z[y], list(weights.values()), retain_graph=True)  # autograd sums the steps
                e_w += sum(float((scales[k].weight_scale * g).square().sum()) for k, g in zip(weights, grads)) / float((z[i] - z[y]).detach()) ** 2
    # both sides take float32 gradients from different backward passes, summed over 28 steps in different orders
    assert b.e_w == pytest.approx(e_w / len(x), rel=2e-5)


def test_bounds_of_attention_quantize_both_operands_of_weight_free_products():
    torch.manual_seed(3)
    model = DepthwiseAttention().eval()
    x = torch.rand(6, 3, 4, 4)
    b = search.sakr_bounds(model, x, precisions=[(6, 6), (10, 10)])
    scores = next(r for r in b.ranges if r.name == "attn.scores")
    assert scores.weight_scale is None and scores.data_scale is not None and scores.rhs_scale is not None
    plan = b.plan(6, 6)
    assert plan.for_layer("attn.scores").rhs is not None and plan.for_layer("attn.scores").weights == qs.Float32()
    assert b.theorem2[(10, 10)] < b.theorem2[(6, 6)] <= b.theorem1(6, 6)

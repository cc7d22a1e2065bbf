"""Sakr's bounds: statistics against brute force, bounds against simulation, their limits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import quantscope as qs
from quantscope import search
from quantscope.search.bounds import _UPPER, _log_histogram, _product_histogram, log_sinhc
from quantscope.train import predict


def _tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.Hardtanh(0, 2), nn.Linear(5, 4))


def test_sakr_statistics_equal_a_brute_force_per_example_computation():
    net = _tiny_net()
    x = torch.randn(6, 1, 6, 6)
    b = search.sakr_bounds(net, x)
    scales = {r.name: r for r in b.ranges}
    names = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    e_a = e_w = 0.0
    for n in range(len(x)):
        acts = {}
        hooks = [net.get_submodule(k).register_forward_pre_hook(lambda m, a, k=k: acts.__setitem__(k, a[0])) for k in names]  # noqa: B023
        xi = x[n : n + 1].clone().requires_grad_(True)
        z = net(xi)[0]
        for h in hooks:
            h.remove()
        y = int(z.argmax())
        for i in range(len(z)):
            if i == y:
                continue
            diff = z[i] - z[y]
            params = [net.get_submodule(k).weight for k in names]
            grads = torch.autograd.grad(diff, [acts[k] for k in names] + params, retain_graph=True)
            v2 = float(diff.detach()) ** 2
            e_a += sum(float((scales[k].data_scale * g).square().sum()) for k, g in zip(names, grads[: len(names)])) / v2
            e_w += sum(float((scales[k].weight_scale * g).square().sum()) for k, g in zip(names, grads[len(names):])) / v2
    assert b.e_a == pytest.approx(e_a / len(x), rel=1e-6) and b.e_w == pytest.approx(e_w / len(x), rel=1e-6)
    assert b.rule_offset() == round(math.log2(math.sqrt(b.e_w / b.e_a)))
    assert b.theorem1(8, 8) == pytest.approx(2.0**-14 * (b.e_a + b.e_w) / 24)


def test_bounds_upper_bound_simulated_mismatch_and_theorem_2_is_tighter(digits_model):
    model, tr, te = digits_model
    x, y = te.tensors()
    # 4..8 bits: beyond, the only mismatch left on 359 digits is one near-tie, a sampling limit
    # of a bound on an expectation (the MNIST experiment checks 2..16 on 2,000 images)
    pairs = [(b, b) for b in range(4, 9)]
    b = search.sakr_bounds(model, x, y, precisions=pairs)
    float_logits = predict(model, te)
    for b_a, b_w in pairs:
        sim = qs.metrics.mismatch_rate(float_logits, predict(qs.emulate(model, b.plan(b_a, b_w)), te))
        assert b.theorem1(b_a, b_w) >= sim and b.theorem2[(b_a, b_w)] >= sim, (b_a, sim)
        assert b.theorem2[(b_a, b_w)] <= b.theorem1(b_a, b_w)
    assert b.error_bound(6, 6) == pytest.approx(min(1.0, b.float_error + b.theorem2[(6, 6)]))


def test_log_sinhc_and_conservative_product_histograms():
    xs = torch.tensor([0.0, 1e-5, 0.5, 3.0, 800.0], dtype=torch.float64)
    direct = torch.tensor([0.0, math.log(math.sinh(1e-5) / 1e-5), math.log(math.sinh(0.5) / 0.5), math.log(math.sinh(3.0) / 3.0)])
    assert torch.allclose(log_sinhc(xs)[:4], direct.double(), atol=1e-12)
    assert log_sinhc(xs)[4] == pytest.approx(800 - math.log(2) - math.log(800))
    d, a = torch.rand(2, 7, dtype=torch.float64) * 3, torch.rand(2, 5, dtype=torch.float64)
    prod = _product_histogram(_log_histogram(d), _log_histogram(a))
    direct_h = _log_histogram((d[:, :, None] * a[:, None, :]).flatten(1))
    assert torch.equal(prod.sum(1), direct_h.sum(1))
    # every product lands in its own bin or the next one up: cumulative counts never lead
    assert bool((prod.cumsum(1) <= direct_h.cumsum(1) + 1e-9).all())
    assert bool((_UPPER[1:] > _UPPER[:-1]).all())


def test_bounds_hold_for_the_linearized_noise_model_even_at_two_bits(digits_model):
    """Both theorems bound the mismatch of the network's first-order response to uniform noise;
    checked by Monte Carlo at coarse precisions, where the real network may leave that model."""
    model, _, te = digits_model
    x, _ = te.tensors(limit=200)
    pairs = [(2, 2), (3, 3), (3, 2), (4, 4)]
    b = search.sakr_bounds(model, x, precisions=pairs, batch_size=50)
    for b_a, b_w in pairs:
        trials = 12
        p = search.linearized_mismatch(model, x, b_a, b_w, b.ranges, trials=trials)
        margin = 3 * math.sqrt(max(p * (1 - p), 1e-4) / (len(x) * trials))
        assert b.theorem2[(b_a, b_w)] >= p - margin and b.theorem1(b_a, b_w) >= p - margin, (b_a, b_w, p, b.theorem2[(b_a, b_w)])
        assert p > 0 or b_a >= 4  # coarse precisions really do flip decisions in this model


def test_noise_injection_separates_nonlinearity_from_rounding(digits_model):
    model, _, te = digits_model
    x, _ = te.tensors(limit=200)
    b = search.sakr_bounds(model, x, precisions=[(2, 2), (4, 4)], batch_size=50)
    coarse = search.noise_mismatch(model, x, 2, 2, b.ranges, draws=5)
    fine = search.noise_mismatch(model, x, 4, 4, b.ranges, draws=5)
    assert coarse > fine >= 0
    assert search.noise_mismatch(model, x, 24, 24, b.ranges, draws=1) == 0  # noise far below every margin
    # the real network under the theorems' own noise stays within Theorem 2 here
    assert coarse <= b.theorem2[(2, 2)] and fine <= b.theorem2[(4, 4)], (coarse, fine, b.theorem2)


def test_coherent_rounding_errors_defeat_both_theorems_on_a_linear_classifier():
    """The theorems model rounding errors as independent zero-mean noise; rounding to nearest is
    deterministic. A linear classifier (so first-order propagation is exact) whose class-1 weights
    all round to zero at 2 bits flips every decision, while both bounds, computed exactly as
    derived, stay near 0.01; the same classifier under the theorems' uniform noise never flips."""
    n = 64
    layer = nn.Linear(n, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0] = 0.9  # sets the weight range to [-1, 1): the 2-bit step is 0.5
        layer.weight[1, 1:] = 0.2  # below half a step: each rounds to exactly 0
        layer.bias.copy_(torch.tensor([1.0, 0.0]))  # biases stay float
    net = nn.Sequential(layer)
    gen = torch.Generator().manual_seed(0)
    x = 0.5 + 0.5 * torch.randint(0, 2, (40, n), generator=gen).float()  # on the 2-bit data grid
    x[:, 0] = 0.0
    b = search.sakr_bounds(net, x, precisions=[(2, 2)])
    assert [(r.data_scale, r.weight_scale) for r in b.ranges] == [(1.0, 1.0)]

    v = 0.2 * x[:, 1:].sum(1) - 1.0  # float margin of class 1 over class 0
    e_w = (2 * x.square().sum(1) / v.square()).mean()  # d(z0 - z1)/dw = +-x for both rows
    e_a = ((0.9**2 + (n - 1) * 0.2**2) / v.square()).mean()  # d(z0 - z1)/dx = w0 - w1: 0.9, then -0.2 each
    assert b.e_w == pytest.approx(float(e_w), rel=1e-6) and b.e_a == pytest.approx(float(e_a), rel=1e-6)

    rounded = qs.emulate(net, b.plan(2, 2))
    with torch.no_grad():
        sim = qs.metrics.mismatch_rate(net(x), rounded(x))
    assert sim == 1.0  # every input flips to class 0
    assert b.theorem2[(2, 2)] <= b.theorem1(2, 2) < 0.02
    assert search.noise_mismatch(net, x, 2, 2, b.ranges, draws=5) == 0.0


def test_the_paper_range_convention_gives_every_operand_sakrs_unit_range():
    """Sakr et al.: weights in [-1, 1), clipped activations in [0, 2); ours: each operand's
    power-of-two range over its maximum. Signedness follows the data either way."""
    net = _tiny_net()
    x = torch.rand(8, 1, 6, 6) * 5
    ours, paper = search.layer_ranges(net, x), search.layer_ranges(net, x, "paper")
    assert [r.name for r in ours] == [r.name for r in paper]
    assert all(r.data_scale == 1.0 and r.weight_scale == 1.0 for r in paper)
    assert [r.data_signed for r in ours] == [r.data_signed for r in paper] == [False, False, False]
    assert ours[0].data_scale == 4.0  # inputs up to 5: unsigned range [0, 8)
    plan = search.SakrBounds(1.0, 1.0, paper, 0.0, 8).plan(4, 6)
    assert plan.for_layer(paper[1].name).data == qs.FixedPoint(4, 3, signed=False)  # [0, 2) in steps of 1/8
    assert plan.for_layer(paper[1].name).weights == qs.FixedPoint(6, 5)            # [-1, 1) in steps of 1/32
    with pytest.raises(ValueError, match="range convention must be one of max, paper"):
        search.layer_ranges(net, x, "sakr")


def test_a_failed_bound_is_outside_the_assumptions_only_when_the_noise_model_keeps_it():
    from quantscope.study.runs.bounds import _verdict

    assert _verdict(0.2, 0.1, None) == "yes"
    assert _verdict(0.2, 0.5, 0.1) == "outside the theorems' assumptions"
    assert _verdict(0.2, 0.5, 0.3) == "no" and _verdict(0.2, 0.5, None) == "no"


def test_a_bounds_run_refuses_an_estimation_split_that_overlaps_the_evaluated_one():
    from quantscope.study import load_config

    study = {"name": "b", "dataset": {"name": "digits", "eval_split": "test"}, "model": {"name": "digits-cnn"}, "train": {"epochs": 1},
             "runs": [{"name": "b", "kind": "bounds", "estimation_split": "val"}]}
    with pytest.raises(ValueError, match="estimation_split 'val' overlaps the evaluated split 'test'"):
        load_config(study)
    load_config({**study, "dataset": {"name": "digits", "eval_split": "test_rest"}})

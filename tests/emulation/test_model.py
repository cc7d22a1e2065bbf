"""emulate(), layers(), BatchNorm folding and observation on real module graphs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from nets import ConvBN, LeNetStyle
from torch import nn

import quantscope as qs
from quantscope import FixedPoint, PrecisionPlan, arith, quantize


@pytest.fixture
def lenet():
    torch.manual_seed(0)
    return LeNetStyle().eval()


@pytest.fixture
def batch():
    return torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_float32_plan_is_identical_and_the_model_is_untouched(lenet, batch):
    before = copy.deepcopy(lenet.state_dict())
    want = lenet(batch)
    qmodel = qs.emulate(lenet, PrecisionPlan.uniform())
    assert qmodel is not lenet
    assert torch.equal(qmodel(batch), want)
    qmodel8 = qs.emulate(lenet, PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<8,4>", accumulator="fixed<24,10>"))
    qmodel8(batch)
    assert all(torch.equal(before[k], v) for k, v in lenet.state_dict().items())
    assert type(lenet.fc1) is nn.Linear and torch.equal(lenet(batch), want)
    assert list(qmodel8.state_dict()) == list(lenet.state_dict())


def _manual_lenet(model, x, wf, xf, acc=None):
    """The emulated LeNet written out by hand with functional calls."""
    def q(t, f):
        return quantize(t, f)

    def conv(m, t):
        if acc:
            return arith.conv2d(q(t, xf), q(m.weight, wf), q(m.bias, wf), acc)
        return F.conv2d(q(t, xf), q(m.weight, wf), q(m.bias, wf))

    def lin(m, t):
        if acc:
            return arith.linear(q(t, xf), q(m.weight, wf), q(m.bias, wf), acc)
        return F.linear(q(t, xf), q(m.weight, wf), q(m.bias, wf))

    f = model.features
    t = F.max_pool2d(conv(f[0], x), 2)
    t = F.max_pool2d(conv(f[2], t), 2)
    return lin(model.fc2, F.relu(lin(model.fc1, t.flatten(1))))


@pytest.mark.parametrize("acc", [None, "fixed<20,10>", "float<5,7>"])
def test_emulated_network_equals_the_hand_written_computation(lenet, batch, acc):
    plan = PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<8,4>", accumulator=acc)
    with torch.no_grad():
        got = qs.emulate(lenet, plan)(batch[:4])
        want = _manual_lenet(lenet, batch[:4], "fixed<8,6>", "fixed<8,4>", acc)
    assert torch.equal(got, want)


def test_adaptive_data_needs_calibration_and_uses_each_layers_range(lenet, batch):
    plan = PrecisionPlan.uniform(weights="fixed<8,auto>", data="fixed<8,auto>")
    with pytest.raises(ValueError, match=r"adaptive activation formats \(fixed<8,auto>\) need a calibration batch"):
        qs.emulate(lenet, plan)
    qmodel = qs.emulate(lenet, plan, calibration=batch)
    assert batch.max() > 127 / 128  # so fixed<8,7> would saturate: the radix must be 6
    assert qmodel.ops["features.0"].data == FixedPoint(8, 6)
    fc1_in = lenet.features(batch).flatten(1)
    assert qmodel.ops["fc1"].data == FixedPoint(8, "auto").resolve(fc1_in)
    assert qmodel.ops["fc1"].data != qmodel.ops["features.0"].data


def test_training_passes_straight_through_gradients_and_blocks_saturated_weights():
    layer = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 9.0, -0.25]]))  # 9.0 is outside fixed<8,4>'s [-8, 7.94]
    qmodel = qs.emulate(layer, PrecisionPlan.uniform(weights="fixed<8,4>")).train()
    x = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    qmodel(x).sum().backward()
    assert qmodel.model.weight.grad.tolist() == [[2.0, 0.0, 4.0]]
    assert layer.weight.grad is None


def test_training_with_an_accumulator_keeps_exact_values_and_float_gradients(lenet, batch):
    plan = PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<8,4>", accumulator="float<5,7>")
    qmodel = qs.emulate(lenet, plan)
    with torch.no_grad():
        want = qmodel(batch[:2])
    qmodel.train()
    got = qmodel(batch[:2])
    assert torch.equal(got.detach(), want)
    got.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in qmodel.parameters())


def test_weights_are_quantized_once_in_eval_and_again_after_an_update(lenet, batch):
    qmodel = qs.emulate(lenet, PrecisionPlan.uniform(weights="fixed<6,4>"))
    weight = qmodel.model.fc1.weight
    qmodel(batch)
    cached = qmodel._cache[id(weight)][1]
    qmodel(batch)
    assert qmodel._cache[id(weight)][1] is cached
    with torch.no_grad():
        weight.add_(0.5)
    qmodel(batch)
    assert torch.equal(qmodel._cache[id(weight)][1], quantize(weight.detach(), "fixed<6,4>"))


def test_layers_reports_shapes_macs_and_judd_groups(lenet, batch):
    info = qs.layers(lenet, batch)
    assert [(l.name, l.kind, l.input_shape, l.output_shape, l.weights, l.bias, l.macs, l.followers) for l in info] == [
        ("features.0", "conv2d", (1, 28, 28), (20, 24, 24), 500, 20, 24 * 24 * 20 * 25, ("features.1",)),
        ("features.2", "conv2d", (20, 12, 12), (50, 8, 8), 25000, 50, 8 * 8 * 50 * 500, ("features.3",)),
        ("fc1", "linear", (800,), (500,), 400000, 500, 400000, ("relu",)),
        ("fc2", "linear", (500,), (10,), 5000, 10, 5000, ()),
    ]
    assert sum(l.macs for l in info) == 2_293_000  # LeNet's well-known 2.3M MACs
    grouped = qs.layers(lenet, batch, groups={"conv": ["features.0", "features.1", "features.2"], "fc": ["fc1", "relu", "fc2"]})
    assert [l.group for l in grouped] == ["conv", "conv", "fc", "fc"]
    with pytest.raises(ValueError, match=r"no module or op named 'fc3'"):
        qs.layers(lenet, batch, groups={"fc": ["fc1", "fc2", "fc3"]})
    with pytest.raises(ValueError, match=r"product ops in no group: fc2"):
        qs.layers(lenet, batch, groups={"all": ["features.0", "features.2", "fc1"]})


def test_batchnorm_folding_matches_the_model_in_eval():
    torch.manual_seed(3)
    model = ConvBN()
    model.train()
    for _ in range(3):  # give the BNs non-trivial running statistics
        model(torch.randn(8, 3, 8, 8) * 2 + 1)
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    folded = qs.fold_batchnorm(model, x)
    assert isinstance(folded.bn, nn.Identity) and isinstance(folded.bn2, nn.Identity)
    assert torch.allclose(folded(x), model(x), atol=1e-5)
    assert isinstance(model.bn, nn.BatchNorm2d)
    q = qs.emulate(model, PrecisionPlan.uniform(weights="fixed<12,8>"), calibration=x, fold_bn=True)
    assert isinstance(q.model.bn, nn.Identity)
    assert torch.allclose(q(x), model(x), atol=0.05)


def test_observe_counts_saturation_and_flush_to_zero():
    layer = nn.Linear(4, 2)
    qmodel = qs.emulate(layer, PrecisionPlan.uniform(weights="fixed<8,4>", data="fixed<8,4>"))
    x = torch.tensor([[9.0, 0.01, -20.0, 1.0], [0.02, 0.5, 7.9, -0.001]])  # range [-8, 7.9375], step 1/16
    with qs.observe(qmodel) as stats:
        qmodel(x)
    s = stats["linear"]  # a bare nn.Linear model: its one op is named by its kind
    assert (s.data_max_abs, s.data_count, s.data_saturated, s.data_flushed) == (20.0, 8, 2, 3)
    assert s.data_saturated_fraction == 0.25 and s.data_flushed_fraction == 0.375
    assert qmodel._stats is None  # observation ends with the block
    with pytest.raises(ValueError, match="emulate"):
        with qs.observe(layer):
            pass


def test_conv1d_layers_are_emulated():
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8, 2))
    x = torch.randn(4, 2, 8)
    plan = PrecisionPlan.uniform(weights="fixed<8,5>", data="fixed<8,4>", accumulator="float<5,10>")
    q = qs.emulate(model, plan)
    conv, fc = model[0], model[3]
    h = arith.conv1d(quantize(x, "fixed<8,4>"), quantize(conv.weight, "fixed<8,5>"), quantize(conv.bias, "fixed<8,5>"), "float<5,10>", padding=1)
    h = quantize(torch.relu(h).flatten(1), "fixed<8,4>")
    want = arith.linear(h, quantize(fc.weight, "fixed<8,5>"), quantize(fc.bias, "fixed<8,5>"), "float<5,10>")
    with torch.no_grad():
        assert torch.equal(q(x), want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_emulation_runs_unchanged_on_cuda(lenet, batch):
    plan = PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<8,4>")
    cpu = qs.emulate(lenet, plan)(batch)
    gpu = qs.emulate(lenet.cuda(), plan)(batch.cuda())
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)

"""Every product op of modern networks is emulated: MACs against an independent count, float32
plans bit for bit, and every op really quantized under a coarse plan."""

from __future__ import annotations

import pytest
import torch
from nets import Functional, TransposedConv, Volumetric
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import quantscope as qs
from quantscope import PrecisionPlan, models

CASES = {
    "resnet20": (lambda: models.create("resnet20", seed=0), (2, 3, 32, 32)),
    "mobilenetv2": (lambda: models.create("mobilenetv2", seed=0), (2, 3, 32, 32)),
    "vit": (lambda: models.create("vit", seed=0), (2, 3, 32, 32)),
    "vit-mha": (lambda: models.create("vit-mha", seed=0), (2, 3, 32, 32)),
    "gpt-char": (lambda: models.create("gpt-char", seed=0), (2, 16)),
    "gpt-char-matmul": (lambda: models.create("gpt-char-matmul", seed=0), (2, 16)),
    "lstm-mnist": (lambda: models.create("lstm-mnist", seed=0), (2, 1, 28, 28)),
    "gru-mnist": (lambda: models.create("gru-mnist", seed=0), (2, 1, 28, 28)),
    "functional": (Functional, (2, 3, 8, 8)),
    "conv-transpose": (TransposedConv, (2, 3, 8, 8)),
    "conv3d": (Volumetric, (2, 2, 5, 6, 6)),
}


def _case(name):
    build, shape = CASES[name]
    torch.manual_seed(0)
    model = build().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, shape, generator=gen) if name.startswith("gpt") else torch.randn(shape, generator=gen)
    return model, x


def _independent_macs(model, x) -> int:
    """MACs per example from PyTorch's FlopCounterMode (SDPA on its math path and gradients on, so
    the fused transformer path, which it cannot see, is not taken); it counts no LSTM, so an LSTM
    is counted by its formula: 4H(I + H) per step."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel([SDPBackend.MATH]), counter:
        model(x)
    macs = counter.get_total_flops() // 2
    for m in model.modules():
        if isinstance(m, nn.LSTM):
            steps = x.shape[2] if m.batch_first else x.shape[1]
            macs += x.shape[0] * steps * 4 * m.hidden_size * (m.input_size + m.hidden_size)
    return macs // x.shape[0]


@pytest.mark.parametrize("name", list(CASES))
def test_emulated_macs_are_all_the_independently_counted_macs(name):
    model, x = _case(name)
    table = qs.layers(model, x)
    assert table.macs == _independent_macs(model, x) > 0
    assert table.coverage == 1.0 and not table.unsupported
    assert "100.0% of" in table.coverage_note()


@pytest.mark.parametrize("name", list(CASES))
def test_an_all_float32_plan_reproduces_the_model_bit_for_bit(name):
    model, x = _case(name)
    with torch.no_grad():
        want = model(x)
        assert torch.equal(qs.emulate(model, PrecisionPlan(), calibration=x)(x), want)
        assert torch.equal(qs.emulate(model, PrecisionPlan.uniform("float32", "float32"))(x), want)


@pytest.mark.parametrize("name", list(CASES))
def test_a_coarse_format_on_any_single_op_changes_the_output(name):
    model, x = _case(name)
    with torch.no_grad():
        want = model(x)
        for op in qs.layers(model, x):
            plan = PrecisionPlan().with_layer(op.name, weights="fixed<3,auto>", data="fixed<3,auto>")
            got = qs.emulate(model, plan, calibration=x)(x)
            assert not torch.equal(got, want), op.name


def test_ops_are_named_from_modules_and_stable_across_runs():
    model, x = _case("vit")
    names = [o.name for o in qs.layers(model, x)]
    assert names == [o.name for o in qs.layers(model, x)]
    assert names[:6] == ["patch", "blocks.0.self_attn.in_proj", "blocks.0.self_attn.scores", "blocks.0.self_attn.values",
                         "blocks.0.self_attn.out_proj", "blocks.0.linear1"]
    lstm, xs = _case("lstm-mnist")
    assert [(o.name, o.calls) for o in qs.layers(lstm, xs)] == [("rnn.l0.ih", 1), ("rnn.l0.hh", 28), ("fc", 1)]
    gpt, ids = _case("gpt-char")
    gpt_ops = [o.name for o in qs.layers(gpt, ids)]
    assert gpt_ops[:2] == ["wte", "wpe"] and gpt_ops[-1] == "lm_head"  # tied weight: the head is its own op
    plan = PrecisionPlan().with_layer("blocks.*.attn.scores", data="fixed<4,auto>")
    q = qs.emulate(gpt, plan, calibration=ids)
    assert [n for n, s in q.ops.items() if not s.is_float32] == [f"blocks.{i}.attn.scores" for i in range(4)]


def test_the_fused_transformer_fast_path_never_bypasses_emulation():
    model, x = _case("vit")
    plan = PrecisionPlan.uniform(weights="fixed<8,auto>", data="fixed<8,auto>")
    q = qs.emulate(model, plan, calibration=x)
    with torch.no_grad(), qs.observe(q) as stats:  # eval + no_grad: PyTorch's fused path condition
        q(x)
    assert set(stats) == {o.name for o in q.table}


def test_unsupported_products_are_an_error_or_a_warning_with_the_share_emulated():
    class Tensordot(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 6)
            self.w = nn.Parameter(torch.randn(6, 2))

        def forward(self, x):
            return torch.tensordot(self.fc(x), self.w, dims=1)

    model, x = Tensordot(), torch.randn(3, 4)
    table = qs.layers(model, x)
    assert [o.name for o in table] == ["fc"] and [o.kind for o in table.unsupported] == ["unsupported:tensordot"]
    plan = PrecisionPlan.uniform(weights="fixed<8,4>", data="fixed<8,4>")
    with pytest.raises(ValueError, match=r"not emulated \(float32\): tensordot"):
        qs.emulate(model, plan, calibration=x)
    assert table.macs == 24 + 12 and table.coverage == pytest.approx(24 / 36)
    with pytest.warns(UserWarning, match=r"66.7% of 36 MACs per example emulated; not emulated \(float32\): tensordot \(unsupported:tensordot, 12 MACs\)"):
        q = qs.emulate(model, plan, calibration=x, strict=False)
    assert q(x).shape == (3, 2)

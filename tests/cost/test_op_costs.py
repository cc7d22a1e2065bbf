"""Cost models price what each op computes, from the traced op table and dataflow."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import quantscope as qs
from quantscope import PrecisionPlan, cost, models


class Residual(nn.Module):
    """a = relu(conv0(x)); out = head(relu(a + conv2(relu(conv1(a))))): `a` is stored once and
    read twice (by conv1 and, later, by the add)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(1, 2, 3, padding=1)
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.head = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        a = torch.relu(self.conv0(x))
        return self.head(torch.relu(a + self.conv2(torch.relu(self.conv1(a)))).flatten(1))


def test_traffic_stores_a_residual_input_once_and_reads_it_again():
    model, x = Residual(), torch.randn(1, 1, 4, 4)
    plan = (PrecisionPlan().with_layer("conv0", data="fixed<8,4>").with_layer("conv1", data="fixed<6,3>")
            .with_layer("conv2", data="fixed<5,2>").with_layer("head", data="fixed<4,2>"))
    t = cost.traffic(model, plan, x, batch_size=None, output_bits=16)
    rows = {g.group: (g.data_reads, g.data_writes, g.data_bits) for g in t.groups}
    a = 2 * 16  # elements of `a`, stored at conv1's width (its only product-op reader)
    assert rows == {
        "conv0": (16, a, 16 * 8 + a * 6),           # reads x; writes a
        "conv1": (a, a, a * 6 + a * 5),             # reads a; writes relu(conv1) for conv2
        "conv2": (a + a, a, a * 5 + a * 6 + a * 4),  # reads relu(conv1) and a again (the add); writes the head's input
        "head": (a, 3, a * 4 + 3 * 16),             # reads its input; writes the output
    }
    assert t.data_ratio == pytest.approx(t.data_bits / (32 * sum(r[0] + r[1] for r in rows.values())))


def test_a_linear_subclass_and_an_emulated_model_are_priced_as_what_they_compute():
    class Custom(nn.Linear):
        pass

    plain, custom = nn.Sequential(nn.Linear(8, 4)), nn.Sequential(Custom(8, 4))
    x = torch.randn(1, 8)
    plan = PrecisionPlan.uniform(weights="fixed<8,4>", data="fixed<8,4>")
    for f in (cost.footprint, cost.adder_cost, cost.accelerator_energy, cost.mac_plan_cost):
        assert f(plain, plan, x) == f(custom, plan, x)
    emulated = qs.emulate(plain, plan, calibration=x)
    assert cost.accelerator_energy(emulated, None, x) == cost.accelerator_energy(plain, plan, x)
    assert [r.info for r in cost.cost_layers(emulated, None, x)] == [r.info for r in cost.cost_layers(plain, plan, x)]


def test_a_1x1_convolution_costs_what_the_equivalent_linear_layer_costs():
    conv, lin = nn.Sequential(nn.Conv2d(64, 32, 1)), nn.Sequential(nn.Flatten(), nn.Linear(64, 32))
    plan = PrecisionPlan.uniform(weights="fixed<8,4>", data="fixed<8,4>")
    a = cost.accelerator_energy(conv, plan, torch.randn(1, 64, 1, 1))
    b = cost.accelerator_energy(lin, plan, torch.randn(1, 64, 1, 1))
    assert a.cycles == b.cycles == 32 * 4 // 16 + 3  # 32 outputs x ceil(64/16) cycles / 16 units + 3 stages
    assert a.energy_uj == b.energy_uj
    c = cost.accelerator_energy(nn.Sequential(nn.Conv2d(64, 32, 5)), plan, torch.randn(1, 64, 5, 5))
    assert c.cycles == 32 * 64 * 2 // 16 + 3  # a 5x5 window is still one segment per channel (Hashemi's rule)


def test_the_accumulator_width_is_priced_in_the_mac_model():
    model, x = nn.Sequential(nn.Linear(16, 8)), torch.randn(1, 16)
    base = PrecisionPlan.uniform(weights="fixed<8,4>", data="fixed<8,4>")
    default = cost.mac_plan_cost(model, base, x)
    wide = cost.mac_plan_cost(model, base.with_layer("0", accumulator="fixed<32,16>"), x)
    same = cost.mac_plan_cost(model, base.with_layer("0", accumulator="fixed<16,8>"), x)  # the default 2B adder
    assert wide.speedup < default.speedup and wide.energy_saving < default.energy_saving
    assert same == default
    mac = cost.MacModel.load()
    assert mac.energy("float<5,10>", "float<8,23>") > mac.energy("float<5,10>") > mac.energy("float<5,10>", "float<4,3>")


def test_attention_products_are_priced_with_both_operand_widths():
    model, x = models.create("vit", seed=0).eval(), torch.zeros(1, 3, 32, 32)
    plan = PrecisionPlan.uniform(weights="fixed<8,auto>", data="fixed<8,auto>").with_layer("*.scores", rhs="fixed<4,auto>")
    rows = {r.name: r for r in cost.cost_layers(model, plan, x)}
    scores = rows["blocks.0.self_attn.scores"]
    assert scores.info.weights == 0 and scores.operand_bits == 4 and scores.data_bits == 8
    assert scores.info.macs == 65 * 65 * 64 and scores.fan_in == 16  # 4 heads of 16 over 65 tokens
    adders = cost.adder_cost(model, plan, x).per_layer["blocks.0.self_attn.scores"][0]
    assert adders == 4 * 65 * 65 * cost.dot_product_adders(16, 8, 4)

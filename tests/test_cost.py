"""Cost models against the papers' published tables and hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import quantscope as qs
from quantscope import cost, models, published
from quantscope.cost.mac import MacModel, fit
from quantscope.published import HILL_POINTS

HASHEMI_PLANS = published.HASHEMI_PRECISIONS
HASHEMI_ENERGY = {k: published.HASHEMI_ENERGY_UJ[k] for k in ("lenet", "convnet", "alex")}
HASHEMI_SAVINGS = published.HASHEMI_SAVINGS_PCT
HASHEMI_WIDER = {(net, label): e for net in ("alex+", "alex++") for label, e in zip(HASHEMI_PLANS, published.HASHEMI_ENERGY_UJ[net]) if e is not None}


def _energy(net: str, precision: str) -> float:
    w, d = HASHEMI_PLANS[precision]
    return cost.accelerator_energy(models.create(net), qs.PrecisionPlan.uniform(weights=w, data=d), models.example_input(net)).energy_uj


@pytest.mark.parametrize("net", HASHEMI_ENERGY)
def test_hashemi_energy_per_image_within_15_percent_and_savings_within_3_points(net):
    float_energy = _energy(net, "Floating-Point (32,32)")
    for precision, paper, saving in zip(HASHEMI_PLANS, HASHEMI_ENERGY[net], HASHEMI_SAVINGS[net]):
        if paper is None:
            continue
        ours = _energy(net, precision)
        assert abs(ours / paper - 1) < 0.15, f"{net} {precision}: {ours:.2f} vs {paper}"
        assert abs(100 * (1 - ours / float_energy) - saving) < 3, f"{net} {precision} saving"


@pytest.mark.parametrize("key,paper", HASHEMI_WIDER.items(), ids=lambda v: str(v))
def test_hashemi_wider_networks_within_20_percent(key, paper):
    net, precision = key
    assert abs(_energy(net, precision) / paper - 1) < 0.20


def test_accelerator_uses_the_table_and_a_documented_rule_elsewhere():
    table = cost.load_table("hashemi65")
    entry = lambda w, d: cost.tile_entry(qs.LayerPrecision(weights=w, data=d), table)  # noqa: E731
    assert entry("fixed<8,4>", "fixed<8,2>").power_mw == 219.87
    twelve = entry("fixed<12,4>", "fixed<12,6>")
    assert twelve.power_mw == pytest.approx((219.87 + 574.75) / 2)  # linear between 8 and 16 bits
    assert entry("fixed<2,1>", "fixed<2,1>").power_mw >= table["precisions"]["binary"]["power_mw"]
    assert entry("binary<mean>", "fixed<16,8>").binary and entry("pow2<5>", "fixed<12,4>").key == "pow2"
    half = entry("float<5,10>", "float<5,10>")
    assert half.power_mw == pytest.approx(1379.60 * 574.75 / 1213.40)
    lenet, x = models.create("lenet"), models.example_input("lenet")
    plain = cost.accelerator_energy(lenet, None, x)
    with_dram = cost.accelerator_energy(lenet, None, x, memory="dram")
    assert with_dram.energy_uj > plain.energy_uj and with_dram.memory_uj == pytest.approx(cost.traffic(lenet, None, x).total_bits / 64 * 1300e-6)


JUDD_ROWS = [(net, widths, tr) for net, _, widths, tr in published.JUDD_TABLE2]


@pytest.mark.parametrize("net,widths,paper", JUDD_ROWS)
def test_judd_table_2_traffic_ratios_within_0_03(net, widths, paper):
    dev = "meta" if models.info(net).dataset == "imagenet" else None
    m, x = models.create(net, device=dev), models.example_input(net, device=dev)
    groups = models.judd_groups(net, m)
    plan, out_bits = cost.judd_plan(m, x, widths, groups)
    tr = cost.traffic(m, plan, x, batch_size=None, groups=groups, output_bits=out_bits)
    assert abs(tr.data_ratio - paper) < 0.03


def test_traffic_accounting_by_hand_on_lenet():
    m, x = models.create("lenet"), models.example_input("lenet")
    plan = qs.PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<16,8>")
    single = cost.traffic(m, plan, x, batch_size=1)
    # data: image 784 read; 2880, 800, 500 written and read; 10 output written at 32 bits
    assert single.data_bits == 16 * (784 + 2 * (2880 + 800 + 500)) + 32 * 10
    assert single.weight_bits == 8 * 431080  # biases take the weights' format
    batch = cost.traffic(m, plan, x, batch_size=100)
    assert batch.weight_bits == pytest.approx(single.weight_bits / 100) and batch.data_bits == single.data_bits
    assert single.accesses == 784 + 2 * (2880 + 800 + 500) + 10 + 431080
    full = cost.traffic(m, None, x, batch_size=1)
    assert full.ratio == 1.0 and full.data_ratio == 1.0


def test_footprint_counts_bits_per_layer():
    m, x = models.create("lenet"), models.example_input("lenet")
    rows = cost.footprint(m, qs.PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<16,8>").with_layer("ip1", weights="pow2<6>"), x)
    assert [r.weight_bits for r in rows] == [500 * 8, 25000 * 8, 400000 * 6, 5000 * 8]
    assert rows[2].bias_bits == 500 * 6 and rows[0].data_bits == 784 * 16
    assert sum(r.parameter_bytes for r in cost.footprint(m, None, x)) / 1024 == pytest.approx(1683.9, abs=0.1)


def test_sakr_full_adders_on_a_hand_computed_network():
    # Linear 3 -> 2 then Linear 2 -> 1: two dot products of D=3 and one of D=2
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    plan = qs.PrecisionPlan.uniform(weights="fixed<4,2>", data="fixed<6,3>")
    got = cost.adder_cost(net, plan, torch.zeros(1, 3))
    # D=3, B_A=6, B_W=4: 3*6*4 + 2*(6+4+2-1) = 72 + 22 = 94, twice; D=2: 2*24 + 1*(6+4+1-1) = 58
    assert cost.dot_product_adders(3, 6, 4) == 94 and cost.dot_product_adders(2, 6, 4) == 58
    assert got.computational == 2 * 94 + 58
    assert got.representational == (3 * 6 + 6 * 4) + (2 * 6 + 2 * 4)
    with pytest.raises(ValueError, match="D, B_A, B_W >= 1"):
        cost.dot_product_adders(0, 6, 4)


def test_hill_mac_fit_reproduces_its_calibration_points_within_10_percent():
    shipped = MacModel.load()
    result = fit()
    assert all(abs(r["rel_error"]) < 0.10 for r in result["residuals"]), [r for r in result["residuals"] if abs(r["rel_error"]) >= 0.10]
    for point in HILL_POINTS:
        assert shipped.speedup(point["format"]) == pytest.approx(point["speedup"], rel=0.10)
        assert shipped.energy_saving(point["format"]) == pytest.approx(point["energy_saving"], rel=0.10)
    assert shipped.energy("float<8,23>") == pytest.approx(3.7 + 0.9, rel=0.10)  # Horowitz fp32 mult + add


def test_hill_mac_model_is_monotone_in_every_bit_width():
    m = MacModel.load()
    for metric in (m.energy, m.area, m.delay):
        for e, man in itertools.product(range(2, 9), range(0, 23)):
            assert metric(f"float<{e},{man + 1}>") > metric(f"float<{e},{man}>")
            if e < 8:
                assert metric(f"float<{e + 1},{man}>") >= metric(f"float<{e},{man}>")
        for b in range(2, 32):
            assert metric(f"fixed<{b + 1},0>") > metric(f"fixed<{b},0>")
    assert m.speedup("float<8,23>") == pytest.approx(1.0) and m.delay("fixed<1,0>") > 0


def test_technology_tables_can_be_replaced(tmp_path):
    table = cost.load_table("hashemi65")
    table["clock_hz"] = 500.0e6
    path = tmp_path / "fast.yaml"
    import yaml

    path.write_text(yaml.safe_dump(table))
    lenet, x = models.create("lenet"), models.example_input("lenet")
    assert cost.accelerator_energy(lenet, None, x, str(path)).energy_uj == pytest.approx(cost.accelerator_energy(lenet, None, x).energy_uj / 2, rel=1e-6)
    with pytest.raises(FileNotFoundError, match="shipped tables: .*hashemi65"):
        cost.load_table("nope")
    assert math.isclose(cost.load_table("horowitz45")["energy_pj"]["int_mult"][32], 3.1)


def test_mac_plan_cost_weights_layers_by_macs_and_refuses_uncovered_formats():
    import quantscope as qs
    from quantscope import models
    from quantscope.cost import MacModel, mac_plan_cost

    net, x = models.create("lenet"), models.example_input("lenet")
    mac = MacModel.load()
    uniform = mac_plan_cost(net, qs.PrecisionPlan.uniform(weights="float<6,7>", data="float<6,7>"), x)
    assert uniform.speedup == pytest.approx(mac.speedup("float<6,7>"))
    assert uniform.energy_saving == pytest.approx(mac.energy_saving("float<6,7>"))
    layers = [c.info for c in qs.cost.cost_layers(net, None, x)]
    mixed_plan = qs.PrecisionPlan.uniform(weights="float<6,7>", data="float<6,7>").with_layer(layers[0].name, data="fixed<16,8>")
    mixed = mac_plan_cost(net, mixed_plan, x)
    total = sum(i.macs for i in layers)
    ad = lambda f: mac.area(f) * mac.delay(f)  # noqa: E731
    expected = total * ad("float32") / (layers[0].macs * ad("fixed<16,8>") + (total - layers[0].macs) * ad("float<6,7>"))
    assert mixed.speedup == pytest.approx(expected)
    with pytest.raises(ValueError, match="not binary"):
        mac_plan_cost(net, qs.PrecisionPlan.uniform(weights="binary", data="binary"), x)

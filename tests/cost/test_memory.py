"""Judd's traffic against Table 2 and by hand; the footprint."""

from __future__ import annotations

import pytest

import quantscope as qs
from quantscope import cost, models, published

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

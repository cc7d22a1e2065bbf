"""One-layer-at-a-time sensitivity (Judd Figure 3)."""

from __future__ import annotations

import quantscope as qs
from quantscope import search


def test_sensitivity_varies_one_layer_at_a_time(evaluator):
    ref = qs.PrecisionPlan.uniform(weights="fixed<16,12>", data="fixed<16,8>")
    res = search.sensitivity(evaluator, ["conv1", "ip1"], ref, weight_fraction_bits=[1, 6], data_integer_bits=[2, 6], data_fraction_bits=[0, 4])
    assert res.evaluations == 2 * 6
    labels = [(p.labels["layer"], p.labels["what"], p.labels["bits"]) for p in res.points]
    assert ("conv1", "weight fraction bits", 1) in labels and ("ip1", "data fraction bits", 4) in labels
    first = res.points[0]
    assert first.plan.for_layer("conv1").weights == qs.FixedPoint(2, 1) and first.plan.for_layer("ip1").weights == qs.FixedPoint(16, 12)
    by_label = {(p.labels["layer"], p.labels["what"], p.labels["bits"]): p.plan for p in res.points}
    assert by_label[("ip1", "data integer bits", 2)].for_layer("ip1").data == qs.FixedPoint(10, 8)
    assert by_label[("ip1", "data fraction bits", 0)].for_layer("ip1").data == qs.FixedPoint(16, 0)
    assert by_label[("ip1", "data fraction bits", 0)].for_layer("conv1").data == qs.FixedPoint(16, 8)

"""Judd's greedy descent and its per-layer data plans."""

from __future__ import annotations

import pytest

import quantscope as qs
from quantscope import search


def test_greedy_descends_and_reports_the_cheapest_plan_per_tolerance(evaluator):
    layers = ["conv1", "conv2", "ip1"]
    res = search.greedy(evaluator, layers, [(6, 4)] * 3, evaluator.float_accuracy, cost="traffic")
    assert res.points[0].labels["step"] == 0 and res.evaluations > 6
    steps = [p.labels["step"] for p in res.points]
    assert steps == sorted(steps)
    for tol, best in res.best.items():
        limit = (1 - float(tol.rstrip("%")) / 100) * evaluator.float_accuracy
        assert best.accuracy >= limit
        assert best.costs["traffic"] == min(p.costs["traffic"] for p in res.points if p.accuracy >= limit)
    assert res.best["10%"].costs["traffic"] <= res.best["1%"].costs["traffic"] < res.points[0].costs["traffic"]
    capped = search.greedy(evaluator, layers, [(6, 4)] * 3, evaluator.float_accuracy, budget=search.Budget(5))
    assert capped.evaluations == 5 and not capped.complete


def test_data_plans_take_signedness_per_layer():
    plan = search.data_plan(["a", "b"], [(2, 1), (1, 0)], signed=[False, True])
    assert plan.for_layer("a").data == qs.FixedPoint(3, 1, signed=False) and plan.for_layer("b").data == qs.FixedPoint(1, 0)
    with pytest.raises(ValueError, match="2 signedness flags given for 3 layers"):
        search.data_plan(["a", "b", "c"], [(1, 1)] * 3, signed=[True, False])

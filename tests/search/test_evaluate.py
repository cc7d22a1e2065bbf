"""The evaluator: accuracy, mismatch, R^2 and costs of one plan."""

from __future__ import annotations

import pytest
from torch import nn

import quantscope as qs
from quantscope import data, search


def test_evaluator_measures_accuracy_mismatch_r2_and_costs(evaluator):
    p = evaluator(qs.PrecisionPlan())
    assert p.accuracy == evaluator.float_accuracy and p.mismatch == 0.0 and p.r2 == 1.0
    assert p.costs["traffic"] == 1.0 and p.costs["energy_uj"] > 0
    q = evaluator(qs.PrecisionPlan.uniform(weights="fixed<3,auto>", data="fixed<3,auto>"))
    assert q.mismatch > 0 and q.r2 < 1 and q.costs["traffic"] == pytest.approx(3 / 32, rel=0.2)
    before = evaluator.evaluations
    assert evaluator(qs.PrecisionPlan.uniform(weights="fixed<3,auto>", data="fixed<3,auto>")) is q
    assert evaluator.evaluations == before
    with pytest.raises(ValueError, match="unknown cost model"):
        search.Evaluator(nn.Linear(2, 2), data.load("digits", "test"), costs=("latency",))


def test_r2_probe_equals_the_full_evaluations_r2(evaluator):
    plan = qs.PrecisionPlan.uniform(weights="float<3,2>", data="float<3,2>")
    assert evaluator.r2_only(plan) == pytest.approx(evaluator(plan).r2, abs=1e-6)  # batch layouts differ
    assert evaluator.r2_only(qs.PrecisionPlan()) == 1.0

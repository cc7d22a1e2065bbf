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


def test_a_weight_free_product_keeps_each_operand_sign():
    """Attention's values op: P >= 0 takes an unsigned width, V keeps its sign (a plan that gave
    V P's unsigned format clipped every negative value to 0)."""
    plan = search.data_plan(["values", "scores", "fc"], [(2, 3)] * 3, signed=[(False, True), (True, True), False])
    values, scores = plan.for_layer("values"), plan.for_layer("scores")
    assert values.data == qs.FixedPoint(5, 3, signed=False) and values.rhs_format == qs.FixedPoint(5, 3, signed=True)
    assert scores.rhs is None and scores.rhs_format == scores.data == qs.FixedPoint(5, 3)
    assert plan.for_layer("fc").data == qs.FixedPoint(5, 3, signed=False)
    # the descent keeps a sign bit wherever either operand is signed
    lowered = search.greedy(lambda p: search.Point(p, 1.0, 0.0, 1.0, {"bits": p.for_layer("values").data.bits}), ["values"], [(1, 1)],
                            1.0, signed=[(False, True)], cost="bits")
    assert [(f.bits - f.frac, f.frac) for f in (p.plan.for_layer("values").data for p in lowered.points)] == [(1, 1), (1, 0)]


def test_signs_from_ranges_let_attention_run_at_a_wide_uniform_width():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.MultiheadAttention(8, 2, batch_first=True).eval()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = model

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    net, x = Wrap().eval(), torch.randn(4, 5, 8)
    ranges = search.layer_ranges(net, x)
    signs = {r.name: r.signs() for r in ranges}
    assert signs["attn.values"] == (False, True) and signs["attn.scores"] is True
    layers = [r.name for r in ranges]
    emulated = qs.emulate(net, search.data_plan(layers, [(8, 12)] * len(layers), signed=[signs[n] for n in layers]))
    with torch.no_grad():
        torch.testing.assert_close(emulated(x), net(x), atol=2e-3, rtol=0)


LADDER = ["mxfp8<e4m3>", "mxfp6<e2m3>", "mxfp4"]
#: accuracy lost by each op on each rung (a toy network: op b is fragile at 4 bits)
LOSS = {"a": [0.0, 0.001, 0.004], "b": [0.0, 0.002, 0.2], "c": [0.0, 0.0, 0.0005]}


def _toy(plan: qs.PrecisionPlan) -> search.Point:
    """Accuracy 0.9 minus each op's loss on its rung; cost: bits per value summed over ops."""
    rungs = {op: LADDER.index(str(plan.for_layer(op).weights)) for op in LOSS}
    assert all(str(plan.for_layer(op).data) == LADDER[r] for op, r in rungs.items())
    acc = 0.9 - sum(LOSS[op][r] for op, r in rungs.items())
    bits = sum(qs.parse_format(LADDER[r]).bits_per_value for r in rungs.values())
    return search.Point(plan, acc, 0.0, 1.0, costs={"parameter_bits": bits})


def test_ladder_greedy_moves_the_most_harmless_op_down_a_rung_each_step():
    res = search.ladder_greedy(_toy, list(LOSS), LADDER, 0.9, tolerances=(0.01, 0.05))
    path = [p.labels["rungs"] for p in res.points]
    assert path[0] == [0, 0, 0] and res.points[0].labels["step"] == 0
    # step 1 lowers c (loses nothing), step 2 lowers c again, step 3 lowers a, step 4 lowers a, then b
    chosen = [max((p for p in res.points if p.labels["step"] == s), key=lambda p: p.accuracy).labels["rungs"] for s in range(1, 5)]
    assert chosen == [[0, 0, 1], [0, 0, 2], [1, 0, 2], [1, 1, 2]]
    assert res.best["1%"].labels["rungs"] == [2, 1, 2]  # loses 0.004 + 0.002 + 0.0005: within 0.009
    assert res.best["5%"].labels["rungs"] == [2, 1, 2]  # b at MXFP4 loses 0.2
    with pytest.raises(ValueError, match="at least two formats"):
        search.ladder_greedy(_toy, list(LOSS), LADDER[:1], 0.9)


def test_format_sensitivity_varies_one_op_at_a_time():
    top = search.ladder_plan(list(LOSS), [0, 0, 0], LADDER)
    res = search.format_sensitivity(_toy, list(LOSS), top, LADDER[1:])
    assert [(p.labels["layer"], p.labels["format"]) for p in res.points] == [(op, f) for op in LOSS for f in LADDER[1:]]
    assert [round(0.9 - p.accuracy, 6) for p in res.points] == [0.001, 0.004, 0.002, 0.2, 0.0, 0.0005]

"""Hill's R^2 predictor search."""

from __future__ import annotations

import quantscope as qs
from quantscope import search


def test_predictor_picks_the_fastest_format_meeting_the_target_with_k_evaluations():
    # a synthetic world: formats with >= 5 mantissa bits meet the target; R^2 tells them apart
    cands = search.float_formats([4, 5], range(1, 10))
    acc = lambda f: 0.99 if f.man >= 5 else 0.90  # noqa: E731
    fmt_of = {}

    def r2_of(plan):
        f = plan.default.weights
        fmt_of[str(plan)] = f
        return 0.999 if f.man >= 5 else 0.8

    calls = []

    def evaluate(plan):
        calls.append(plan)
        f = plan.default.weights
        return search.Point(plan, acc(f), 0.0, 1.0)

    model = search.LinearAccuracyModel.fit([(0.8, 0.9), (0.999, 0.999), (0.5, 0.6)])
    speed = lambda f: 100 - f.man - 0.1 * f.exp  # noqa: E731
    res = search.hill_search(r2_of, evaluate, cands, speed, model, float_accuracy=1.0, target=0.985, k=2)
    assert res.chosen == qs.MiniFloat(4, 5) and res.evaluations == 2 == len(calls) and res.probes == len(cands)
    assert model.predict(2.0) == model.predict(1.0)  # R^2 is clipped to [0, 1]

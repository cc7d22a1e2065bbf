"""Sweeps: through the executor, within the budget, on labelled copies."""

from __future__ import annotations

from quantscope import search


def test_sweeps_run_through_the_executor_and_stop_at_the_budget(evaluator):
    class Recording:
        def __init__(self):
            self.items = []

        def map(self, fn, items):
            items = list(items)
            self.items += items
            return [fn(i) for i in items]

    plans = search.uniform_plans(search.fixed_formats(range(1, 4), range(2, 5)))
    rec = Recording()
    full = search.sweep(evaluator, plans, executor=rec)
    assert full.complete and full.evaluations == 9 and rec.items == plans
    budget = search.Budget(4)
    partial = search.sweep(evaluator, plans, budget=budget)
    assert not partial.complete and partial.evaluations == 4 and budget.exhausted
    assert search.sweep(evaluator, plans, budget=budget).evaluations == 0
    assert len(search.float_formats()) == 7 * 23


def test_searches_label_copies_and_leave_cached_points_alone(evaluator):
    layers = ["conv1", "conv2", "ip1"]
    start = search.data_plan(layers, [(6, 4)] * 3)
    cached = evaluator(start)
    before = dict(cached.labels)
    res = search.greedy(evaluator, layers, [(6, 4)] * 3, evaluator.float_accuracy, budget=search.Budget(3))
    assert res.points[0].labels["step"] == 0 and evaluator(start) is cached and cached.labels == before

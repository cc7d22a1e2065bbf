"""The Pareto front."""

from __future__ import annotations

import pytest

import quantscope as qs
from quantscope import search


def test_pareto_keeps_exactly_the_non_dominated_points():
    def pt(acc, traffic):
        return search.Point(qs.PrecisionPlan(), acc, 0.0, 1.0, {"traffic": traffic})

    pts = [pt(0.99, 0.5), pt(0.98, 0.3), pt(0.97, 0.4), pt(0.99, 0.6), pt(0.90, 0.1), pt(0.98, 0.3)]
    front = search.pareto(pts)
    assert front == [pts[0], pts[1], pts[4], pts[5]]
    with pytest.raises(KeyError, match="no 'energy'"):
        search.pareto(pts, minimize=["energy"])

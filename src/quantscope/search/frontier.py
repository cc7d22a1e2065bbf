"""The Pareto front of evaluated points, used by the reports."""

from __future__ import annotations

from collections.abc import Sequence

from .evaluate import Point

__all__ = ["pareto"]


def pareto(points: Sequence[Point], minimize: Sequence[str] = ("traffic",), maximize: Sequence[str] = ("accuracy",)) -> list[Point]:
    """The non-dominated points: none other is at least as good in every objective and better
    in one. Returned in input order."""
    if not minimize and not maximize:
        raise ValueError("pareto needs at least one objective")

    def key(p: Point) -> tuple[float, ...]:
        return tuple(-p.value(k) for k in minimize) + tuple(p.value(k) for k in maximize)

    keys = [key(p) for p in points]
    front = []
    for i, ki in enumerate(keys):
        dominated = any(all(a >= b for a, b in zip(kj, ki)) and kj != ki for j, kj in enumerate(keys) if j != i)
        if not dominated:
            front.append(points[i])
    return front

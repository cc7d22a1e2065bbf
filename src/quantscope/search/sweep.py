"""Search results, and the uniform sweep over a grid of plans (Hill, Judd)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..plan import PrecisionPlan
from .evaluate import Budget, Executor, Point, evaluate_many

__all__ = ["SearchResult", "labelled", "sweep"]


@dataclass
class SearchResult:
    """Every evaluated point, and whether the search finished or its budget stopped it."""

    points: list[Point] = field(default_factory=list)
    complete: bool = True
    best: dict[str, Point] = field(default_factory=dict)

    @property
    def evaluations(self) -> int:
        return len(self.points)


def labelled(point: Point, **labels) -> Point:
    """A copy of `point` with more labels (evaluators cache and share points: never mutate them)."""
    return replace(point, labels={**point.labels, **labels})


def sweep(evaluator: Callable[[PrecisionPlan], Point], plans: Sequence[PrecisionPlan], executor: Executor | None = None,
          budget: Budget | None = None) -> SearchResult:
    """Evaluate a grid of plans (in order); stops cleanly at the budget."""
    points, complete = evaluate_many(evaluator, plans, executor, budget)
    return SearchResult(points, complete)

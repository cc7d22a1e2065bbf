"""Grids of formats and uniform plans, and the sweep that evaluates a grid (Hill, Judd)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..formats import FixedPoint, Format, MiniFloat, as_format
from ..plan import PrecisionPlan
from .evaluate import Budget, Executor, Point, evaluate_many
from .result import SearchResult

__all__ = ["float_formats", "fixed_formats", "uniform_plans", "sweep"]


def float_formats(exponents: Iterable[int] = range(2, 9), mantissas: Iterable[int] = range(1, 24)) -> list[Format]:
    """Every custom float float<E,M> of the grid; a combination quantscope cannot emulate is an
    error naming it (never dropped from the grid)."""
    return [MiniFloat(e, m) for e in exponents for m in mantissas]


def fixed_formats(integer_bits: Iterable[int], fraction_bits: Iterable[int], signed: bool = True) -> list[Format]:
    """Fixed point I.F for every pair (I includes the sign bit when signed); a pair with no bits,
    or one quantscope cannot emulate, is an error naming it."""
    out: list[Format] = []
    for i in integer_bits:
        for f in fraction_bits:
            if i + f < 1:
                raise ValueError(f"the fixed-point grid pairs {i} integer and {f} fraction bits: at least 1 bit in all is needed")
            out.append(FixedPoint(i + f, f, signed=signed))
    return out


def uniform_plans(formats: Iterable[Format | str], targets: Sequence[str] = ("weights", "data"), accumulate: bool = False) -> list[PrecisionPlan]:
    """One uniform plan per format, applied to the named fields (and the accumulator if asked)."""
    plans = []
    for f in formats:
        f = as_format(f)
        fields = {t: f for t in targets}
        if accumulate:
            fields["accumulator"] = f
        plans.append(PrecisionPlan.uniform(**fields))
    return plans


def sweep(evaluator: Callable[[PrecisionPlan], Point], plans: Sequence[PrecisionPlan], executor: Executor | None = None,
          budget: Budget | None = None) -> SearchResult:
    """Evaluate a grid of plans (in order); stops cleanly at the budget."""
    points, complete = evaluate_many(evaluator, plans, executor, budget)
    return SearchResult(points, complete)

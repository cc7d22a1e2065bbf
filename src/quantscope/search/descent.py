"""Greedy per-op precision search: Judd et al.'s data widths (a uniform sweep for the start, then
greedy descent, Table 2), and the same descent over a ladder of formats (e.g. MX formats)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ..formats import FixedPoint, Format
from ..plan import PrecisionPlan
from .evaluate import Budget, Executor, Point, evaluate_many
from .grids import sweep
from .result import SearchResult, labelled

__all__ = ["JUDD_UNIFORM_WIDTHS", "JuddResult", "Sign", "data_plan", "greedy", "judd_descent", "ladder_greedy", "ladder_plan"]


#: an op's operand signedness for data widths: one flag, or (data, second operand) for a
#: weight-free product whose operands differ (see LayerRange.signs)
Sign = Union[bool, tuple[bool, bool]]


def _signs(signed: bool | Sequence[Sign], n: int) -> list[tuple[bool, bool]]:
    """(data, second operand) signedness per layer."""
    if isinstance(signed, bool):
        return [(signed, signed)] * n
    if len(signed) != n:
        raise ValueError(f"{len(signed)} signedness flags given for {n} layers")
    return [(bool(v), bool(v)) if isinstance(v, bool) else (bool(v[0]), bool(v[1])) for v in signed]


def data_plan(layers: Sequence[str], widths: Sequence[tuple[int, int]], weights: Format | str = "float32",
              signed: bool | Sequence[Sign] = True) -> PrecisionPlan:
    """A plan with per-layer data formats I.F (and one weight format for all layers). `signed`
    may be one flag or one per layer (unsigned suits non-negative data: see `layer_ranges`); a
    per-layer (data, second operand) pair gives a weight-free product's second operand the same
    width with its own sign (`LayerRange.signs`)."""
    plan = PrecisionPlan.uniform(weights=weights)
    for layer, (i, f), (data_sign, rhs_sign) in zip(layers, widths, _signs(signed, len(layers))):
        formats = {"data": FixedPoint(i + f, f, signed=data_sign)}
        if rhs_sign != data_sign:
            formats["rhs"] = FixedPoint(i + f, f, signed=rhs_sign)
        plan = plan.with_layer(layer, **formats)
    return plan


def _one_bit_less(current: list[tuple[int, int]], signs: list[tuple[bool, bool]]) -> list[list[tuple[int, int]]]:
    """Every width list with one op's integer or fraction bits lowered by one (a width with a
    signed operand keeps its sign bit; every width keeps at least one bit)."""
    out = []
    for k, (i, f) in enumerate(current):
        for ni, nf in ((i - 1, f), (i, f - 1)):
            if ni >= (1 if any(signs[k]) else 0) and nf >= 0 and ni + nf >= 1:
                out.append([*current[:k], (ni, nf), *current[k + 1 :]])
    return out


def _descend(
    evaluator: Callable[[PrecisionPlan], Point],
    start: list[Any],
    cheaper: Callable[[list[Any]], list[list[Any]]],
    plan_of: Callable[[list[Any]], PrecisionPlan],
    label_of: Callable[[list[Any]], dict[str, Any]],
    float_accuracy: float,
    tolerances: Sequence[float],
    cost: str,
    executor: Executor | None,
    budget: Budget | None,
) -> SearchResult:
    """Greedy descent over per-op states: evaluate `start`, then every state `cheaper` gives
    (one op one step cheaper), continue from the most accurate; stop when none stays within the
    largest tolerance, when no step is left, or at the budget. `best[tol]` is the lowest-`cost`
    point within (1 - tol) x float accuracy."""
    floor = (1 - max(tolerances)) * float_accuracy
    current = start
    result = SearchResult()
    first, complete = evaluate_many(evaluator, [plan_of(current)], executor, budget)
    result.points += [labelled(p, step=0, **label_of(current)) for p in first]
    step = 0
    while complete:
        step += 1
        candidates = cheaper(current)
        if not candidates:
            break
        points, complete = evaluate_many(evaluator, [plan_of(c) for c in candidates], executor, budget)
        points = [labelled(p, step=step, **label_of(c)) for p, c in zip(points, candidates)]
        result.points += points
        if not points:
            break
        best_i = max(range(len(points)), key=lambda j: points[j].accuracy)
        if points[best_i].accuracy < floor:
            break
        current = candidates[best_i]
    result.complete = complete
    for tol in tolerances:
        ok = [p for p in result.points if p.accuracy >= (1 - tol) * float_accuracy]
        if ok:
            result.best[f"{tol:.0%}"] = min(ok, key=lambda p: p.value(cost))
    return result


def greedy(
    evaluator: Callable[[PrecisionPlan], Point],
    layers: Sequence[str],
    start: Sequence[tuple[int, int]],
    float_accuracy: float,
    tolerances: Sequence[float] = (0.01, 0.02, 0.05, 0.10),
    cost: str = "traffic",
    weights: Format | str = "float32",
    signed: bool | Sequence[Sign] = True,
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> SearchResult:
    """Judd's descent: from per-layer data widths `start` (I, F), try lowering each layer's
    integer or fraction bits by one; continue from the candidate with the best accuracy; record
    every point. Stops when no candidate stays within the largest tolerance, when no bit can be
    dropped, or at the budget. `best[tol]` is the lowest-`cost` point whose accuracy is at least
    (1 - tol) x float accuracy (Judd's error relative to the baseline)."""
    signs = _signs(signed, len(layers))
    return _descend(evaluator, [(int(i), int(f)) for i, f in start], lambda c: _one_bit_less(c, signs),
                    lambda c: data_plan(layers, c, weights, signed), lambda c: {"widths": [list(w) for w in c]},
                    float_accuracy, tolerances, cost, executor, budget)


def ladder_plan(layers: Sequence[str], rungs: Sequence[int], ladder: Sequence[Format | str],
                targets: Sequence[str] = ("weights", "data"), base: PrecisionPlan | None = None) -> PrecisionPlan:
    """A plan giving each op the format at its rung of `ladder` for every field in `targets`."""
    plan = base or PrecisionPlan()
    for layer, rung in zip(layers, rungs):
        plan = plan.with_layer(layer, **{t: ladder[rung] for t in targets})
    return plan


def ladder_greedy(
    evaluator: Callable[[PrecisionPlan], Point],
    layers: Sequence[str],
    ladder: Sequence[Format | str],
    float_accuracy: float,
    tolerances: Sequence[float] = (0.01, 0.02, 0.05, 0.10),
    cost: str = "parameter_bits",
    targets: Sequence[str] = ("weights", "data"),
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> SearchResult:
    """Greedy descent over a ladder of formats (widest first, e.g. mxfp8<e4m3>, mxfp6<e2m3>,
    mxfp4): every op starts on the top rung, and each step moves the one op whose next rung
    keeps the most accuracy (points labelled with each op's rung)."""
    if len(ladder) < 2:
        raise ValueError(f"a format ladder needs at least two formats, got {list(map(str, ladder))}")

    def cheaper(rungs: list[int]) -> list[list[int]]:
        return [[*rungs[:k], r + 1, *rungs[k + 1:]] for k, r in enumerate(rungs) if r + 1 < len(ladder)]

    return _descend(evaluator, [0] * len(layers), cheaper, lambda r: ladder_plan(layers, r, ladder, targets),
                    lambda r: {"rungs": list(r)}, float_accuracy, tolerances, cost, executor, budget)


JUDD_UNIFORM_WIDTHS: tuple[tuple[int, int], ...] = tuple((i, f) for i in range(1, 13) for f in range(0, 5))
"""Judd's uniform sweep: integer bits 1..12 by fraction bits 0..4."""


@dataclass
class JuddResult:
    """Judd's whole procedure: the uniform sweep (points labelled `uniform=[I, F]`), the start
    it gave, and the greedy descent from there."""

    uniform: SearchResult
    start: tuple[int, int] | None
    greedy: SearchResult

    def best_uniform(self, tolerance: float, float_accuracy: float, cost: str = "traffic") -> Point | None:
        """The lowest-cost uniform point within `tolerance` of float accuracy (None if none)."""
        ok = [p for p in self.uniform.points if p.accuracy >= (1 - tolerance) * float_accuracy]
        return min(ok, key=lambda p: p.value(cost)) if ok else None


def judd_descent(
    evaluator: Callable[[PrecisionPlan], Point],
    layers: Sequence[str],
    float_accuracy: float,
    uniform_widths: Sequence[tuple[int, int]] = JUDD_UNIFORM_WIDTHS,
    tolerances: Sequence[float] = (0.01, 0.02, 0.05, 0.10),
    cost: str = "traffic",
    weights: Format | str = "float32",
    signed: bool | Sequence[Sign] = True,
    start_within: float = 0.001,
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> JuddResult:
    """Sweep uniform data widths I.F, start greedy from the cheapest one within `start_within`
    of float accuracy (Judd: 0.1%), and descend. If no uniform width is close enough, or the
    budget stops the sweep, greedy does not run (its result is empty and incomplete)."""
    widths = [(int(i), int(f)) for i, f in uniform_widths]
    uni = sweep(evaluator, [data_plan(layers, [w] * len(layers), weights, signed) for w in widths], executor, budget)
    uni.points = [labelled(p, uniform=list(w)) for p, w in zip(uni.points, widths)]
    close = [p for p in uni.points if p.accuracy >= (1 - start_within) * float_accuracy]
    if not close or not uni.complete:
        return JuddResult(uni, None, SearchResult(complete=False))
    i, f = min(close, key=lambda p: (p.value(cost), -p.accuracy)).labels["uniform"]
    start = (int(i), int(f))
    result = greedy(evaluator, layers, [start] * len(layers), float_accuracy, tolerances, cost, weights, signed, executor, budget)
    return JuddResult(uni, start, result)

"""Uniform sweeps (Hill, Judd), one-layer sensitivity (Judd Fig. 3), greedy descent (Judd Table 2),
and the Pareto front used by the reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..formats import FixedPoint, Format, MiniFloat, as_format
from ..plan import PrecisionPlan
from .evaluate import Budget, Executor, Point, evaluate_many


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


# ------------------------------------------------------------------------------------ grids
def float_formats(exponents: Iterable[int] = range(2, 9), mantissas: Iterable[int] = range(1, 24)) -> list[Format]:
    """Every custom float with the given exponent and mantissa bits that fits float32."""
    out = []
    for e in exponents:
        for m in mantissas:
            try:
                out.append(MiniFloat(e, m))
            except ValueError:
                continue
    return out


def fixed_formats(integer_bits: Iterable[int], fraction_bits: Iterable[int], signed: bool = True) -> list[Format]:
    """Fixed point I.F for every pair (I includes the sign bit when signed)."""
    return [FixedPoint(i + f, f, signed=signed) for i in integer_bits for f in fraction_bits if i + f >= 1]


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


# ------------------------------------------------------------------------------- sensitivity
def sensitivity(
    evaluator: Callable[[PrecisionPlan], Point],
    layers: Sequence[str],
    reference: PrecisionPlan,
    weight_fraction_bits: Iterable[int] = range(0, 13),
    data_integer_bits: Iterable[int] = range(1, 17),
    data_fraction_bits: Iterable[int] = range(0, 9),
    reference_data_fraction: int = 8,
    reference_data_integer: int = 16,
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> SearchResult:
    """Vary one layer at a time, the others at `reference` (Judd Figure 3).

    Three sweeps per layer: weights as fixed point with 1 integer (sign) bit and F fraction bits;
    data with I integer bits and `reference_data_fraction` fraction bits; data with
    `reference_data_integer` integer bits and F fraction bits. Points carry labels
    {"layer", "what", "bits"}.
    """
    plans, labels = [], []
    for layer in layers:
        for f in weight_fraction_bits:
            plans.append(reference.with_layer(layer, weights=FixedPoint(1 + f, f)))
            labels.append({"layer": layer, "what": "weight fraction bits", "bits": f})
        for i in data_integer_bits:
            plans.append(reference.with_layer(layer, data=FixedPoint(i + reference_data_fraction, reference_data_fraction)))
            labels.append({"layer": layer, "what": "data integer bits", "bits": i})
        for f in data_fraction_bits:
            plans.append(reference.with_layer(layer, data=FixedPoint(reference_data_integer + f, f)))
            labels.append({"layer": layer, "what": "data fraction bits", "bits": f})
    points, complete = evaluate_many(evaluator, plans, executor, budget)
    return SearchResult([labelled(p, **lab) for p, lab in zip(points, labels)], complete)


# ----------------------------------------------------------------------------------- greedy
def _signs(signed: bool | Sequence[bool], n: int) -> list[bool]:
    if isinstance(signed, bool):
        return [signed] * n
    if len(signed) != n:
        raise ValueError(f"{len(signed)} signedness flags given for {n} layers")
    return [bool(v) for v in signed]


def data_plan(layers: Sequence[str], widths: Sequence[tuple[int, int]], weights: Format | str = "float32",
              signed: bool | Sequence[bool] = True) -> PrecisionPlan:
    """A plan with per-layer data formats I.F (and one weight format for all layers). `signed`
    may be one flag or one per layer (unsigned suits non-negative data: see `layer_ranges`)."""
    plan = PrecisionPlan.uniform(weights=weights)
    for layer, (i, f), sign in zip(layers, widths, _signs(signed, len(layers))):
        plan = plan.with_layer(layer, data=FixedPoint(i + f, f, signed=sign))
    return plan


def greedy(
    evaluator: Callable[[PrecisionPlan], Point],
    layers: Sequence[str],
    start: Sequence[tuple[int, int]],
    float_accuracy: float,
    tolerances: Sequence[float] = (0.01, 0.02, 0.05, 0.10),
    cost: str = "traffic",
    weights: Format | str = "float32",
    signed: bool | Sequence[bool] = True,
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> SearchResult:
    """Judd's descent: from per-layer data widths `start` (I, F), try lowering each layer's
    integer or fraction bits by one; continue from the candidate with the best accuracy; record
    every point. Stops when no candidate stays within the largest tolerance, when no bit can be
    dropped, or at the budget. `best[tol]` is the lowest-`cost` point whose accuracy is at least
    (1 - tol) x float accuracy (Judd's error relative to the baseline)."""
    floor = (1 - max(tolerances)) * float_accuracy
    signs = _signs(signed, len(layers))
    current = [tuple(w) for w in start]
    result = SearchResult()
    first, complete = evaluate_many(evaluator, [data_plan(layers, current, weights, signed)], executor, budget)
    result.points += [labelled(p, step=0, widths=[list(w) for w in current]) for p in first]
    step = 0
    while complete:
        step += 1
        candidates = []
        for k, (i, f) in enumerate(current):
            for di, df in ((1, 0), (0, 1)):
                ni, nf = i - di, f - df
                if ni < (1 if signs[k] else 0) or nf < 0 or ni + nf < 1:
                    continue
                cand = list(current)
                cand[k] = (ni, nf)
                candidates.append(cand)
        if not candidates:
            break
        points, complete = evaluate_many(evaluator, [data_plan(layers, c, weights, signed) for c in candidates], executor, budget)
        points = [labelled(p, step=step, widths=[list(w) for w in c]) for p, c in zip(points, candidates)]
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
    uniform_widths: Sequence[tuple[int, int]] = tuple((i, f) for i in range(1, 13) for f in range(0, 5)),
    tolerances: Sequence[float] = (0.01, 0.02, 0.05, 0.10),
    cost: str = "traffic",
    weights: Format | str = "float32",
    signed: bool | Sequence[bool] = True,
    start_within: float = 0.001,
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> JuddResult:
    """Sweep uniform data widths I.F, start greedy from the cheapest one within `start_within`
    of float accuracy (Judd: 0.1%), and descend. If no uniform width is close enough, or the
    budget stops the sweep, greedy does not run (its result is empty and incomplete)."""
    widths = [tuple(w) for w in uniform_widths]
    uni = sweep(evaluator, [data_plan(layers, [w] * len(layers), weights, signed) for w in widths], executor, budget)
    uni.points = [labelled(p, uniform=list(w)) for p, w in zip(uni.points, widths)]
    close = [p for p in uni.points if p.accuracy >= (1 - start_within) * float_accuracy]
    if not close or not uni.complete:
        return JuddResult(uni, None, SearchResult(complete=False))
    start = tuple(min(close, key=lambda p: (p.value(cost), -p.accuracy)).labels["uniform"])
    result = greedy(evaluator, layers, [start] * len(layers), float_accuracy, tolerances, cost, weights, signed, executor, budget)
    return JuddResult(uni, start, result)


# ----------------------------------------------------------------------------------- pareto
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


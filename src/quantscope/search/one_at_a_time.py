"""One-layer-at-a-time sensitivity (Judd et al., Figure 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ..formats import FixedPoint, Format
from ..plan import PrecisionPlan
from .evaluate import Budget, Executor, Point, evaluate_many
from .result import SearchResult, labelled

__all__ = ["sensitivity", "format_sensitivity"]


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


def format_sensitivity(
    evaluator: Callable[[PrecisionPlan], Point],
    layers: Sequence[str],
    reference: PrecisionPlan,
    formats: Sequence[Format | str],
    targets: Sequence[str] = ("weights", "data"),
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> SearchResult:
    """One op at a time in each of `formats` (for every field in `targets`), the others at
    `reference`. Points carry labels {"layer", "format"}."""
    plans = [reference.with_layer(layer, **{t: fmt for t in targets}) for layer in layers for fmt in formats]
    labels = [{"layer": layer, "format": str(fmt)} for layer in layers for fmt in formats]
    points, complete = evaluate_many(evaluator, plans, executor, budget)
    return SearchResult([labelled(p, **lab) for p, lab in zip(points, labels)], complete)

"""Hill et al.'s precision search: predict accuracy from last-layer R^2, then refine with a few
real evaluations.

For each candidate format, run ~10 inputs through the float and emulated networks and take the
R^2 of their last-layer outputs (cheap). A linear model fitted on (R^2, normalized accuracy)
pairs of *other* networks predicts normalized accuracy. Pick the fastest candidate predicted to
meet the target, evaluate it for real, then add a mantissa bit if it missed or drop one if it met,
for `k` evaluations in all. The answer is the fastest evaluated format that met the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..formats import Format, as_format
from ..plan import PrecisionPlan
from .evaluate import Point

__all__ = ["LinearAccuracyModel", "PredictorResult", "hill_search"]


def _clip01(r2: float) -> float:
    return float(min(max(r2, 0.0), 1.0))


@dataclass(frozen=True)
class LinearAccuracyModel:
    """normalized accuracy ~ slope * R^2 + intercept (R^2 clipped to [0, 1])."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, pairs: Sequence[tuple[float, float]]) -> LinearAccuracyModel:
        """Least squares on (R^2, normalized accuracy) pairs."""
        if len(pairs) < 2:
            raise ValueError(f"fitting needs at least 2 (R^2, accuracy) pairs, got {len(pairs)}")
        x = np.array([_clip01(r) for r, _ in pairs])
        y = np.array([a for _, a in pairs])
        slope, intercept = np.polyfit(x, y, 1)
        return cls(float(slope), float(intercept))

    def predict(self, r2: float) -> float:
        return self.slope * _clip01(r2) + self.intercept


@dataclass
class PredictorResult:
    """The chosen format, the evaluations it took, and the probes (R^2 only) it used."""

    chosen: Format | None
    evaluated: list[tuple[Format, Point]] = field(default_factory=list)
    predictions: dict[str, float] = field(default_factory=dict)
    probes: int = 0

    @property
    def evaluations(self) -> int:
        return len(self.evaluated)


def _neighbour(fmt: Format, candidates: Sequence[Format], step: int) -> Format | None:
    """The candidate with `step` more significand bits (None if it is not a candidate)."""
    wider = fmt.widened(step)
    return wider if wider is not None and wider in candidates else None


def hill_search(
    r2_of: Callable[[PrecisionPlan], float],
    evaluate: Callable[[PrecisionPlan], Point],
    candidates: Sequence[Format | str],
    speed: Callable[[Format], float],
    model: LinearAccuracyModel,
    float_accuracy: float,
    target: float = 0.99,
    k: int = 2,
    plan_for: Callable[[Format], PrecisionPlan] = lambda f: PrecisionPlan.uniform(weights=f, data=f),
) -> PredictorResult:
    """Predict with R^2 probes, then refine with `k` full evaluations (see the module docstring)."""
    cands = [as_format(c) for c in candidates]
    result = PredictorResult(chosen=None)
    for c in cands:
        result.predictions[str(c)] = model.predict(r2_of(plan_for(c)))
        result.probes += 1
    ranked = sorted(cands, key=speed, reverse=True)
    predicted_ok = [c for c in ranked if result.predictions[str(c)] >= target]
    current: Format | None = predicted_ok[0] if predicted_ok else ranked[-1]
    met: list[Format] = []
    tried: set[str] = set()
    for _ in range(k):
        if current is None or str(current) in tried:
            break
        point = evaluate(plan_for(current))
        tried.add(str(current))
        result.evaluated.append((current, point))
        ok = point.accuracy >= target * float_accuracy
        if ok:
            met.append(current)
        current = _neighbour(current, cands, -1 if ok else +1)
    result.chosen = max(met, key=speed) if met else None
    return result

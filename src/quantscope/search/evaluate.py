"""One evaluation function for every search: plan in, measured point out.

An `Evaluator` holds a float model, an evaluation set and settings; calling it with a plan emulates
the model under the plan and measures accuracy, the mismatch rate against the float model's
decisions, the R^2 of the last-layer outputs on the first `r2_inputs` examples (Hill), and any
cost models asked for. `evaluate_many` runs plans through an executor (anything with
`map(fn, items)`: in-process by default; process pools and Ray in `quantscope.executors`) under
an optional `Budget`, so searches can run points in parallel, cache them, and stop cleanly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .. import cost, metrics
from ..data import Dataset
from ..emulate import emulate
from ..plan import PrecisionPlan
from ..train import predict

__all__ = ["Point", "Evaluator", "Budget", "BudgetExhausted", "InProcess", "COST_MODELS", "evaluate_many"]


@dataclass
class Point:
    """One evaluated plan: its measurements, costs, and free-form labels (e.g. the layer varied)."""

    plan: PrecisionPlan
    accuracy: float
    mismatch: float
    r2: float
    costs: dict[str, float] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str) -> float:
        """A measurement or cost by name ("accuracy", "mismatch", "r2", or a cost key)."""
        if key in ("accuracy", "mismatch", "r2"):
            return getattr(self, key)
        if key in self.costs:
            return self.costs[key]
        raise KeyError(f"point has no {key!r}; it has accuracy, mismatch, r2, {', '.join(self.costs)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the plan as its dict form)."""
        return {"plan": self.plan.to_dict(), "accuracy": self.accuracy, "mismatch": self.mismatch, "r2": self.r2,
                "costs": dict(self.costs), "labels": dict(self.labels)}


def _traffic(model, plan, x):
    return cost.traffic(model, plan, x, batch_size=None).data_ratio


def _energy(model, plan, x):
    return cost.accelerator_energy(model, plan, x).energy_uj


def _adders(model, plan, x):
    return float(cost.adder_cost(model, plan, x).computational)


def _param_bits(model, plan, x):
    return float(sum(r.weight_bits + r.bias_bits for r in cost.footprint(model, plan, x)))


#: cost models an Evaluator can attach to points: name -> fn(model, plan, example_input)
COST_MODELS: dict[str, Callable[[nn.Module, PrecisionPlan, torch.Tensor], float]] = {
    "traffic": _traffic,          # Judd data traffic ratio vs 32 bits (batch use case)
    "energy_uj": _energy,         # Hashemi accelerator energy per image
    "full_adders": _adders,       # Sakr computational cost per image
    "parameter_bits": _param_bits,
}


class BudgetExhausted(RuntimeError):
    """Raised when a search asks for more evaluations than its budget allows."""


class Budget:
    """A cap on full evaluations, shared by a search's calls (thread-safe)."""

    def __init__(self, max_evaluations: int | None = None) -> None:
        if max_evaluations is not None and max_evaluations < 0:
            raise ValueError(f"max_evaluations must be >= 0 or None, got {max_evaluations}")
        self.max_evaluations = max_evaluations
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> int:
        """Reserve up to n evaluations; returns how many were granted."""
        with self._lock:
            left = n if self.max_evaluations is None else max(0, min(n, self.max_evaluations - self.used))
            self.used += left
            return left

    @property
    def exhausted(self) -> bool:
        return self.max_evaluations is not None and self.used >= self.max_evaluations


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterable[Any]: ...


class InProcess:
    """Evaluate one point after another in this process."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return [fn(i) for i in items]


class Evaluator:
    """Plan -> Point for one float model on one evaluation set (see the module docstring).

    `calibration` is the batch adaptive data formats take their ranges from (default: the first
    256 evaluation examples); `limit` evaluates only the first examples; `costs` names entries of
    COST_MODELS; `cache` reuses points of plans already evaluated.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        costs: Sequence[str] = ("traffic",),
        limit: int | None = None,
        r2_inputs: int = 10,
        calibration: torch.Tensor | None = None,
        batch_size: int = 1000,
        rounding: str = "nearest",
    ) -> None:
        unknown = [c for c in costs if c not in COST_MODELS]
        if unknown:
            raise ValueError(f"unknown cost model(s) {unknown}; known: {', '.join(COST_MODELS)}")
        self.model = model.eval()
        self.dataset = dataset if limit is None else dataset.subset(slice(0, limit))
        self.costs = tuple(costs)
        self.r2_inputs = r2_inputs
        self.batch_size = batch_size
        self.rounding = rounding
        self.calibration = calibration if calibration is not None else self.dataset.tensors(limit=256)[0]
        self.example = self.calibration[:1]
        self.float_logits = predict(self.model, self.dataset, batch_size)
        self.float_accuracy = metrics.topk_accuracy(self.float_logits, self.dataset.labels)
        self._cache: dict[PrecisionPlan, Point] = {}
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self.evaluations = 0

    def __call__(self, plan: PrecisionPlan) -> Point:
        """Emulate under `plan` and measure (cached by plan)."""
        if plan in self._cache:
            return self._cache[plan]
        qmodel = emulate(self.model, plan, self.calibration, rounding=self.rounding)
        logits = predict(qmodel, self.dataset, self.batch_size)
        n = min(self.r2_inputs, len(logits))
        point = Point(
            plan=plan,
            accuracy=metrics.topk_accuracy(logits, self.dataset.labels),
            mismatch=metrics.mismatch_rate(self.float_logits, logits),
            r2=metrics.r_squared(self.float_logits[:n], logits[:n]),
            costs={c: float(COST_MODELS[c](self.model, plan, self.example)) for c in self.costs},
        )
        self._cache[plan] = point
        self.evaluations += 1
        return point

    def r2_only(self, plan: PrecisionPlan) -> float:
        """The last-layer R^2 on the first `r2_inputs` examples only (Hill's cheap probe); the
        float reference runs on the same small batch, so the float plan scores exactly 1."""
        if self._probe is None:
            x, _ = self.dataset.tensors(limit=self.r2_inputs)
            with torch.no_grad():
                self._probe = (x, self.model(x))
        x, reference = self._probe
        qmodel = emulate(self.model, plan, self.calibration, rounding=self.rounding)
        with torch.no_grad():
            return metrics.r_squared(reference, qmodel(x))


def evaluate_many(
    evaluator: Callable[[PrecisionPlan], Point],
    plans: Sequence[PrecisionPlan],
    executor: Executor | None = None,
    budget: Budget | None = None,
) -> tuple[list[Point], bool]:
    """Evaluate plans (in order) through the executor, within the budget.

    Returns (points, complete): when the budget runs out only the first plans it allows are
    evaluated and `complete` is False.
    """
    granted = len(plans) if budget is None else budget.take(len(plans))
    todo = list(plans[:granted])
    points = list((executor or InProcess()).map(evaluator, todo))
    return points, granted == len(plans)

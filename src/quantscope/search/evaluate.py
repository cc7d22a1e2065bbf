"""One evaluation function for every search: plan in, measured point out.

An `Evaluator` holds a float model, an evaluation set and settings; calling it with a plan emulates
the model under the plan and measures accuracy, the mismatch rate against the float model's
decisions, the R^2 of the last-layer outputs on the first `r2_inputs` examples (Hill), and any
cost models asked for. `evaluate_many` runs plans through an executor (anything with
`map(fn, items)`: in-process by default; process pools and Ray in `quantscope.executors`) under
an optional `Budget`, so searches can run points in parallel, cache them, and stop cleanly.

An evaluator's `fingerprint` hashes everything its points depend on (weights, evaluation data,
calibration batch, settings, QAT settings and data, EVALUATOR_VERSION), so a result store can key
points by (fingerprint, plan). Each point runs with a fixed number of torch threads (`threads`):
float sums depend on the thread count, and results must not depend on the executor.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .. import cost, metrics
from ..data import Dataset
from ..emulation import emulate
from ..errors import UnsupportedFormat
from ..executors import InProcess
from ..plan import PrecisionPlan
from ..store import content_key
from ..train import QAT_DEFAULTS, TrainConfig, finetune, predict, torch_threads

__all__ = ["Point", "Evaluator", "Budget", "BudgetExhausted", "InProcess", "Qat", "COST_MODELS", "EVALUATOR_VERSION", "evaluate_many"]

#: bump when a change to evaluation or cost code changes stored results
EVALUATOR_VERSION = 2


@dataclass
class Point:
    """One evaluated plan: its measurements, costs, and free-form labels (e.g. the layer varied).

    `accuracy` is top-1 accuracy over all decisions (every next-token prediction of a language
    model); `metrics` holds the task's other measures (a language model's `bits_per_char` and
    `perplexity`)."""

    plan: PrecisionPlan
    accuracy: float
    mismatch: float
    r2: float
    costs: dict[str, float] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, key: str) -> float:
        """A measurement, metric or cost by name ("accuracy", "mismatch", "r2", a metric or cost key)."""
        if key in ("accuracy", "mismatch", "r2"):
            return getattr(self, key)
        for table in (self.metrics, self.costs):
            if key in table:
                return table[key]
        raise KeyError(f"point has no {key!r}; it has accuracy, mismatch, r2, {', '.join([*self.metrics, *self.costs])}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the plan as its dict form)."""
        out = {"plan": self.plan.to_dict(), "accuracy": self.accuracy, "mismatch": self.mismatch, "r2": self.r2,
               "costs": dict(self.costs), "labels": dict(self.labels)}
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Point:
        """The inverse of `to_dict`."""
        return cls(PrecisionPlan.from_dict(d["plan"]), d["accuracy"], d["mismatch"], d["r2"], dict(d.get("costs", {})),
                   dict(d.get("labels", {})), dict(d.get("metrics", {})))


def _traffic(model, plan, x):
    return cost.traffic(model, plan, x, batch_size=None).data_ratio


def _energy(model, plan, x):
    return cost.accelerator_energy(model, plan, x).energy_uj


def _adders(model, plan, x):
    return float(cost.adder_cost(model, plan, x).computational)


def _representational(model, plan, x):
    return float(cost.adder_cost(model, plan, x).representational)


def _param_bits(model, plan, x):
    return float(sum(r.weight_bits + r.bias_bits for r in cost.footprint(model, plan, x)))


def _mac_speedup(model, plan, x):
    return cost.mac_plan_cost(model, plan, x).speedup


def _mac_energy_saving(model, plan, x):
    return cost.mac_plan_cost(model, plan, x).energy_saving


#: cost models an Evaluator can attach to points: name -> fn(model, plan, example_input)
COST_MODELS: dict[str, Callable[[nn.Module, PrecisionPlan, torch.Tensor], float]] = {
    "traffic": _traffic,          # Judd data traffic ratio vs 32 bits (batch use case)
    "energy_uj": _energy,         # Hashemi accelerator energy per image
    "full_adders": _adders,       # Sakr computational cost per image
    "representational_bits": _representational,  # Sakr representational cost: activations and weights
    "parameter_bits": _param_bits,
    "mac_speedup": _mac_speedup,  # Hill: MAC throughput at fixed area over float32 (fixed/float only)
    "mac_energy_saving": _mac_energy_saving,  # Hill: MAC energy of float32 over this plan's
}


def _costs(names: Sequence[str], model: nn.Module, plan: PrecisionPlan, x: torch.Tensor) -> dict[str, float]:
    """The named costs; a model that does not cover a plan's formats (MAC units for power-of-two
    or binary) leaves its cost out rather than inventing one."""
    out = {}
    for name in names:
        try:
            out[name] = float(COST_MODELS[name](model, plan, x))
        except UnsupportedFormat:
            continue
    return out


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A content hash of tensors (dtype, shape and bytes)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dataset_digest(ds: Dataset) -> str:
    """A content hash of a dataset split (images, labels, normalization)."""
    return content_key(ds.name, ds.split, ds.normalize, tensor_digest(ds.images, ds.labels))


@dataclass(frozen=True)
class Qat:
    """Quantization-aware fine-tuning before each evaluation: training data and settings."""

    train_set: Dataset
    config: TrainConfig = QAT_DEFAULTS



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
    """Anything that maps a function over items, results in order (see `quantscope.executors`)."""

    def map(self, fn: Any, items: Iterable[Any]) -> Iterable[Any]: ...


class Evaluator:
    """Plan -> Point for one float model on one evaluation set (see the module docstring).

    `calibration` is the batch adaptive data formats take their ranges from (default: the first
    256 evaluation examples); `limit` evaluates only the first examples; `costs` names entries of
    COST_MODELS; `threads` is the torch thread count of every evaluation (None: leave it);
    `qat` fine-tunes each plan's model before it is measured. Points are cached by plan.
    Under stochastic rounding, a point draws from a generator seeded by its store key and `seed`,
    so it is the same in any process, on any executor, before and after an interruption.
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
        threads: int | None = 1,
        qat: Qat | None = None,
        seed: int = 0,
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
        self.threads = threads
        self.qat = qat
        self.seed = seed
        self.calibration = calibration if calibration is not None else self.dataset.tensors(limit=256)[0]
        self.example = self.calibration[:1]
        with torch_threads(threads):
            logits = predict(self.model, self.dataset, batch_size)
        self.float_accuracy = metrics.topk_accuracy(logits, self.dataset.labels)
        self.float_metrics = self._metrics(logits)
        self.float_decisions = logits.argmax(-1)
        self.float_probe = logits[: r2_inputs]
        self._cache: dict[PrecisionPlan, Point] = {}
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self.evaluations = 0
        self.fingerprint = self._fingerprint()

    def with_rounding(self, rounding: str) -> Evaluator:
        """The same evaluator rounding every value in another mode (its own points and keys)."""
        if rounding == self.rounding:
            return self
        other = copy.copy(self)
        other.rounding = rounding
        other._cache, other._probe, other.evaluations = {}, None, 0
        other.fingerprint = other._fingerprint()
        return other

    def _fingerprint(self) -> str:
        state = self.model.state_dict()
        qat = None
        if self.qat is not None:
            qat = {"config": asdict(self.qat.config), "data": dataset_digest(self.qat.train_set)}
        return content_key(
            "evaluator", EVALUATOR_VERSION, type(self.model).__name__, {k: tensor_digest(v) for k, v in state.items()},
            dataset_digest(self.dataset), tensor_digest(self.calibration), self.costs, self.r2_inputs, self.batch_size,
            self.rounding, self.threads, qat,
            *((self.seed,) if self.rounding == "stochastic" else ()),  # seeded draws (keys of other points unchanged)
        )

    def _metrics(self, logits: torch.Tensor) -> dict[str, float]:
        """The task's measures beyond accuracy: bits per character and perplexity for text."""
        if self.dataset.kind != "text":
            return {}
        bits = metrics.bits_per_token(logits, self.dataset.labels)
        return {"bits_per_char": bits, "perplexity": 2.0**bits}

    def point_key(self, plan: PrecisionPlan) -> str:
        """The store key of `plan`'s point under this evaluator."""
        return content_key(self.fingerprint, plan.to_dict())

    def generator(self, plan: PrecisionPlan) -> torch.Generator | None:
        """The random draws of `plan`'s stochastic rounding: seeded by its point key and the
        evaluator's seed (None under deterministic rounding)."""
        if self.rounding != "stochastic":
            return None
        return torch.Generator().manual_seed(int(self.point_key(plan)[:15], 16) + self.seed)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}  # workers need no copy of the cache

    def __call__(self, plan: PrecisionPlan) -> Point:
        """Emulate (after QAT if configured) under `plan` and measure (cached by plan)."""
        if plan in self._cache:
            return self._cache[plan]
        with torch_threads(self.threads):
            if self.qat is not None:
                qmodel, _ = finetune(self.model, plan, self.qat.train_set, self.qat.config, calibration=self.calibration)
            else:
                qmodel = emulate(self.model, plan, self.calibration, rounding=self.rounding, generator=self.generator(plan))
            logits = predict(qmodel, self.dataset, self.batch_size)
            point = Point(
                plan=plan,
                accuracy=metrics.topk_accuracy(logits, self.dataset.labels),
                mismatch=metrics.decision_mismatch(self.float_decisions, logits.argmax(-1)),
                r2=metrics.r_squared(self.float_probe, logits[: len(self.float_probe)]),
                costs=self.costs_of(plan),
                metrics=self._metrics(logits),
            )
        self._cache[plan] = point
        self.evaluations += 1
        return point

    def costs_of(self, plan: PrecisionPlan) -> dict[str, float]:
        """The evaluator's costs of `plan` under the current cost models (no evaluation)."""
        return _costs(self.costs, self.model, plan, self.example)

    def r2_only(self, plan: PrecisionPlan) -> float:
        """The last-layer R^2 on the first `r2_inputs` examples only (Hill's cheap probe); the
        float reference runs on the same small batch, so the float plan scores exactly 1."""
        with torch_threads(self.threads), torch.no_grad():
            if self._probe is None:
                x, _ = self.dataset.tensors(limit=self.r2_inputs)
                self._probe = (x, self.model(x))
            x, reference = self._probe
            qmodel = emulate(self.model, plan, self.calibration, rounding=self.rounding, generator=self.generator(plan))
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

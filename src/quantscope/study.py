"""A study from one YAML config: float baseline, evaluated points, costs, searches, report.

The config (validated by `StudyConfig`: unknown keys, wrong types and impossible values are errors
that name the key) says which dataset and network, how to get the float model (a checkpoint, or
training that is cached by a content hash of everything it depends on), which runs to do (explicit
plans, grid sweeps, sensitivity, Judd's greedy descent, Sakr's bounds), QAT and evaluation settings,
and the report. `run_study` evaluates every point through an executor and writes each to the result
store as it completes, so a killed study resumes where it stopped; finished runs keep a summary and
are not redone.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import nn

from . import data, models, search
from .emulation import layers
from .errors import did_you_mean
from .executors import InProcess
from .formats import parse_format
from .plan import FIELDS, PrecisionPlan
from .search.evaluate import COST_MODELS, Evaluator, Point, Qat, dataset_digest, tensor_digest, torch_threads
from .store import Store, content_key, write_atomic
from .train import TrainConfig, load_checkpoint, save_checkpoint, train

__all__ = ["StudyConfig", "load_config", "run_study", "StudyResult", "cache_dir", "DEMO_CONFIG"]

DEMO_CONFIG = Path(__file__).parent / "studies" / "demo.yaml"
DEFAULT_COSTS = ["traffic", "energy_uj", "mac_speedup", "mac_energy_saving", "full_adders", "parameter_bits"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSettings(_Strict):
    """Which data: a registered dataset (or image folder), the split points are measured on."""

    name: str
    eval_split: Literal["test", "val", "test_rest", "train"] = "test"
    limit: int | None = Field(None, ge=1, description="evaluate only the first LIMIT examples")
    data_dir: str | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in data.names() and not ("/" in v or Path(v).exists()):
            raise ValueError(f"unknown dataset {v!r}{did_you_mean(v, data.names())}; registered: {', '.join(data.names())}")
        return v


class ModelSettings(_Strict):
    """Which network: registered `name` or a user's `module` ("pkg.mod:factory" or
    "file.py:factory"), with weights from `checkpoint` or from float training."""

    name: str | None = None
    module: str | None = None
    checkpoint: str | None = None
    width: float = Field(1.0, gt=0)
    normalize: Literal["standard", "unit"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSettings:
        if (self.name is None) == (self.module is None):
            raise ValueError("give exactly one of model.name (a registered network) and model.module ('pkg.mod:factory')")
        if self.name is not None and self.name not in models.names():
            raise ValueError(f"unknown model {self.name!r}{did_you_mean(self.name, models.names())}; registered: {', '.join(models.names())}")
        if self.module is not None and ":" not in self.module:
            raise ValueError(f"model.module must look like 'package.module:factory' or 'file.py:factory', got {self.module!r}")
        return self


class _Training(_Strict):
    """Training settings; see `train.TrainConfig`."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.05, gt=0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    seed: int = 0
    augment: bool = False
    max_batches: int | None = Field(None, ge=1, description="stop each epoch after this many batches (quick runs)")

    def config(self) -> TrainConfig:
        return TrainConfig(**self.model_dump(exclude={"threads"}))


class TrainSettings(_Training):
    """Float training (used when the model has no checkpoint)."""

    threads: int | None = Field(None, ge=1, description="torch threads while training (None: all)")


class QatSettings(_Training):
    """Quantization-aware fine-tuning for runs with `qat: true` (it runs inside each evaluation,
    with `evaluation.threads`)."""

    epochs: int = Field(2, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["sgd", "adam"] = "adam"
    weight_decay: float = Field(0.0, ge=0)


class EvaluationSettings(_Strict):
    """How points are measured."""

    costs: list[str] = Field(default_factory=lambda: list(DEFAULT_COSTS))
    r2_inputs: int = Field(10, ge=2)
    rounding: Literal["nearest", "stochastic", "floor", "toward_zero"] = "nearest"
    batch_size: int = Field(1000, ge=1)
    calibration: int = Field(256, ge=1, description="training examples that adaptive formats take ranges from")
    threads: int = Field(1, ge=1, description="torch threads per evaluation (results depend on it)")

    @field_validator("costs")
    @classmethod
    def _known_costs(cls, v: list[str]) -> list[str]:
        for c in v:
            if c not in COST_MODELS:
                raise ValueError(f"unknown cost model {c!r}{did_you_mean(c, COST_MODELS)}; known: {', '.join(COST_MODELS)}")
        return v


def _check_format(v: str) -> str:
    parse_format(v)
    return v


FormatStr = Annotated[str, AfterValidator(_check_format)]


class _Run(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    qat: bool = False
    max_evaluations: int | None = Field(None, ge=1, description="stop the run cleanly after this many points")

    def budget(self) -> search.Budget:
        return search.Budget(self.max_evaluations)


class PlansRun(_Run):
    """Named plans, each a format string (weights and data), {weights, data, bias, accumulator},
    or a full plan {default: ..., overrides: ...}."""

    kind: Literal["plans"]
    plans: dict[str, str | dict[str, Any]] = Field(min_length=1)

    @field_validator("plans")
    @classmethod
    def _valid(cls, v: dict[str, Any]) -> dict[str, Any]:
        for label, spec in v.items():
            try:
                _plan_of(spec)
            except ValueError as err:
                raise ValueError(f"plan {label!r}: {err}") from None
        return v

    def plan_list(self) -> list[tuple[str, PrecisionPlan]]:
        return [(label, _plan_of(spec)) for label, spec in self.plans.items()]


class FloatGrid(_Strict):
    exponents: list[int] = Field(min_length=1)
    mantissas: list[int] = Field(min_length=1)


class FixedGrid(_Strict):
    integer_bits: list[int] = Field(min_length=1)
    fraction_bits: list[int] = Field(min_length=1)
    signed: bool = True


class SweepRun(_Run):
    """Uniform plans over a grid: explicit `formats`, custom floats, fixed points, or all three,
    applied to `targets`."""

    kind: Literal["sweep"]
    formats: list[FormatStr] = Field(default_factory=list)
    float: FloatGrid | None = None
    fixed: FixedGrid | None = None
    targets: list[Literal["weights", "data", "bias", "accumulator"]] = Field(default_factory=lambda: ["weights", "data"], min_length=1)

    @model_validator(mode="after")
    def _some(self) -> SweepRun:
        if not (self.formats or self.float or self.fixed):
            raise ValueError("a sweep needs formats, a float grid or a fixed grid")
        return self

    def plan_list(self) -> list[tuple[str, PrecisionPlan]]:
        fmts = [parse_format(f) for f in self.formats]
        if self.float:
            fmts += search.float_formats(self.float.exponents, self.float.mantissas)
        if self.fixed:
            fmts += search.fixed_formats(self.fixed.integer_bits, self.fixed.fraction_bits, self.fixed.signed)
        fmts = list(dict.fromkeys(fmts))
        return [(str(f), PrecisionPlan.uniform(**{t: f for t in self.targets})) for f in fmts]


class SensitivityRun(_Run):
    """Judd Figure 3: one layer at a time, the others at the reference (fixed I.F data)."""

    kind: Literal["sensitivity"]
    layers: list[str] | None = None
    reference_weights: FormatStr = "fixed<16,12>"
    reference_data: tuple[int, int] = (16, 8)
    weight_fraction_bits: list[int] = Field(default_factory=lambda: list(range(0, 13)))
    data_integer_bits: list[int] = Field(default_factory=lambda: list(range(1, 17)))
    data_fraction_bits: list[int] = Field(default_factory=lambda: list(range(0, 9)))


class GreedyRun(_Run):
    """Judd's uniform sweep + greedy per-layer descent of data widths under tolerances."""

    kind: Literal["greedy"]
    integer_bits: list[int] = Field(default_factory=lambda: list(range(1, 13)))
    fraction_bits: list[int] = Field(default_factory=lambda: list(range(0, 5)))
    tolerances: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=lambda: [0.01, 0.02, 0.05, 0.10])
    cost: str = "traffic"
    weights: FormatStr = "float32"
    signed: Literal["auto"] | bool = "auto"


class BoundsRun(_Run):
    """Sakr's bounds at B_W = B_A and at the rule's offset, with simulated mismatch."""

    kind: Literal["bounds"]
    bits: list[Annotated[int, Field(ge=2, le=24)]] = Field(default_factory=lambda: list(range(2, 17)))
    estimation: int = Field(500, ge=10, description="examples of the evaluation split that estimate E_A and E_W")
    simulate: bool = True

    @model_validator(mode="after")
    def _no_qat(self) -> BoundsRun:
        if self.qat:
            raise ValueError("bounds describe the float network's weights; qat does not apply")
        return self


Run = Annotated[PlansRun | SweepRun | SensitivityRun | GreedyRun | BoundsRun, Field(discriminator="kind")]


class ReportSettings(_Strict):
    """The report's title and whether published numbers sit beside ours."""

    title: str | None = None
    compare: bool = True


class StudyConfig(_Strict):
    """One study: see the module docstring and docs/studies.md."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    description: str = ""
    dataset: DatasetSettings
    model: ModelSettings
    train: TrainSettings | None = None
    qat: QatSettings = QatSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    runs: list[Run] = Field(min_length=1)
    report: ReportSettings = ReportSettings()

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        names = [r.name for r in self.runs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"run names must be unique; repeated: {', '.join(dup)}")
        if self.model.checkpoint is None and self.train is None:
            raise ValueError("the model needs a checkpoint or a train section (float training)")
        for r in self.runs:
            if isinstance(r, GreedyRun) and r.cost not in self.evaluation.costs:
                raise ValueError(f"run {r.name!r} minimizes {r.cost!r}, which is not in evaluation.costs {self.evaluation.costs}")
        return self


def _plan_of(spec: str | dict[str, Any]) -> PrecisionPlan:
    if isinstance(spec, str):
        return PrecisionPlan.parse(spec)
    if set(spec) <= set(FIELDS):
        return PrecisionPlan.uniform(**spec)
    return PrecisionPlan.from_dict(spec)


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        parts = list(e["loc"])
        # a discriminated union puts the run's kind after its index: runs.1.sweep.float -> runs.1.float
        parts = [p for i, p in enumerate(parts) if not (i > 0 and isinstance(parts[i - 1], int) and p in _KINDS)]
        loc = ".".join(str(p) for p in parts)
        msg = e["msg"].removeprefix("Value error, ")
        got = f" (got {e['input']!r})" if e["type"] not in ("missing",) and not isinstance(e.get("input"), dict) else ""
        lines.append(f"  {loc or '(top level)'}: {msg}{got}")
    return "\n".join(lines)


_KINDS = ("plans", "sweep", "sensitivity", "greedy", "bounds")


def load_config(source: str | Path | dict[str, Any]) -> tuple[StudyConfig, Path]:
    """A validated config and the folder its relative paths are relative to."""
    if isinstance(source, dict):
        raw, base, where = source, Path.cwd(), "config"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"study config {str(path)!r} does not exist")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"{path} is not valid YAML: {err}") from None
        base, where = path.resolve().parent, str(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a study config is a mapping (name, dataset, model, runs, ...)")
    try:
        return StudyConfig.model_validate(raw), base
    except ValidationError as err:
        raise ValueError(f"{where} is not a valid study config:\n{_describe(err)}") from None


# ------------------------------------------------------------------------------- float model
def cache_dir() -> Path:
    """Where trained float models are cached: $QUANTSCOPE_CACHE or ~/.cache/quantscope."""
    return Path(os.environ.get("QUANTSCOPE_CACHE") or Path.home() / ".cache" / "quantscope")


def _build(settings: ModelSettings, base: Path) -> nn.Module:
    if settings.name is not None:
        return models.create(settings.name, width=settings.width, seed=0)
    where, factory = settings.module.rsplit(":", 1)
    if where.endswith(".py"):
        path = (base / where).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or not path.is_file():
            raise FileNotFoundError(f"model module file {str(path)!r} does not exist")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, factory):
        raise ValueError(f"model module {where!r} has no {factory!r}")
    model = getattr(module, factory)()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{settings.module} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _normalize(cfg: StudyConfig) -> str:
    if cfg.model.normalize:
        return cfg.model.normalize
    return models.info(cfg.model.name).normalize if cfg.model.name else "standard"


@dataclass
class FloatModel:
    model: nn.Module
    checkpoint: Path
    trained: bool
    seconds: float


def float_model(cfg: StudyConfig, base: Path, train_set: data.Dataset, log: Callable[[str], None]) -> FloatModel:
    """The study's float network: from its checkpoint, or trained once and cached under a hash of
    the architecture, initial weights, training data and settings."""
    model = _build(cfg.model, base)
    if cfg.model.checkpoint is not None:
        path = (base / cfg.model.checkpoint).resolve()
        state, _ = load_checkpoint(path)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"checkpoint {path} does not fit model {cfg.model.name or cfg.model.module}: {str(err).splitlines()[0]}") from None
        return FloatModel(model.eval(), path, False, 0.0)
    assert cfg.train is not None
    key = content_key("float-model", repr(model), {k: tensor_digest(v) for k, v in model.state_dict().items()},
                      dataset_digest(train_set), cfg.train.model_dump(), torch.__version__)
    path = cache_dir() / "models" / f"{key[:32]}.pt"
    if path.is_file():
        state, _ = load_checkpoint(path)
        model.load_state_dict(state)
        log(f"float model: cached {path}")
        return FloatModel(model.eval(), path, False, 0.0)
    log(f"float model: training {cfg.train.epochs} epochs (cached afterwards as {path})")
    start = time.perf_counter()
    with torch_threads(cfg.train.threads):
        train(model, train_set, cfg.train.config(), progress=True)
    save_checkpoint(path, model, {"model": cfg.model.name, "width": cfg.model.width, "dataset": cfg.dataset.name, "normalize": _normalize(cfg)})
    return FloatModel(model.eval(), path, True, time.perf_counter() - start)


# ----------------------------------------------------------------------- stored evaluation
class StoredExecutor:
    """An executor adapter for one evaluator: plans already in the store are read, the rest run
    on `inner` and each result is written the moment it arrives; a progress bar counts done,
    running and left with a time estimate."""

    def __init__(self, inner: Any, store: Store, progress: Any, task: Any) -> None:
        self.inner, self.store, self.progress, self.task = inner, store, progress, task
        self.evaluated = 0
        self.reused = 0
        self.total = 0

    def map(self, fn: Evaluator, plans: Iterable[PrecisionPlan]) -> list[Point]:
        plans = list(plans)
        keys = [fn.point_key(p) for p in plans]
        found = self.store.get_many(keys)
        todo = {k: p for k, p in zip(keys, plans) if k not in found}
        unique = len(set(keys))
        self.reused += unique - len(todo)
        self.total += unique
        if self.progress is not None:
            self.progress.update(self.task, total=self.total, advance=unique - len(todo))
        order = list(todo)
        left = len(order)
        self._running(left)
        for i, point, seconds, worker in self.inner.imap_unordered(fn, [todo[k] for k in order]):
            record = point.to_dict()
            record.pop("labels")
            self.store.put(order[i], record, seconds, worker)
            found[order[i]] = record
            self.evaluated += 1
            left -= 1
            if self.progress is not None:
                self.progress.update(self.task, advance=1)
            self._running(left)
        return [Point.from_dict(found[k]) for k in keys]

    def _running(self, left: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, running=min(left, getattr(self.inner, "workers", 1)))


# ------------------------------------------------------------------------------------ runs
@dataclass
class _Context:
    cfg: StudyConfig
    model: nn.Module
    evaluator: Evaluator
    qat_evaluator: Callable[[], Evaluator]
    layers: list[str]
    calibration: torch.Tensor
    eval_set: data.Dataset
    store: Store


def _run_plans(ctx: _Context, run: PlansRun | SweepRun, ex: StoredExecutor):
    ev = ctx.qat_evaluator() if run.qat else ctx.evaluator
    labelled = run.plan_list()
    res = search.sweep(ev, [p for _, p in labelled], ex, run.budget())
    points = [search.labelled(p, label=label) for (label, _), p in zip(labelled, res.points)]
    return points, {"qat": run.qat, "points": len(points), "complete": res.complete}, ev


def _run_sensitivity(ctx: _Context, run: SensitivityRun, ex: StoredExecutor):
    ev = ctx.qat_evaluator() if run.qat else ctx.evaluator
    layers = run.layers or ctx.layers
    for layer in layers:
        if layer not in ctx.layers:
            raise ValueError(f"run {run.name!r}: unknown layer {layer!r}{did_you_mean(layer, ctx.layers)}; layers: {', '.join(ctx.layers)}")
    i, f = run.reference_data
    reference = search.data_plan(ctx.layers, [(i, f)] * len(ctx.layers), weights=run.reference_weights)
    res = search.sensitivity(ev, layers, reference, run.weight_fraction_bits, run.data_integer_bits, run.data_fraction_bits,
                             reference_data_fraction=f, reference_data_integer=i, executor=ex, budget=run.budget())
    return res.points, {"layers": layers, "float_accuracy": ev.float_accuracy, "qat": run.qat, "complete": res.complete}, ev


def _widths(plan: PrecisionPlan, layers: Sequence[str]) -> list[list[int]]:
    out = []
    for layer in layers:
        f = plan.for_layer(layer).data
        out.append([f.bits - f.frac, f.frac])
    return out


def _run_greedy(ctx: _Context, run: GreedyRun, ex: StoredExecutor):
    ev = ctx.qat_evaluator() if run.qat else ctx.evaluator
    if run.signed == "auto":
        by_op = {r.name: r.data_signed for r in search.layer_ranges(ctx.model, ctx.calibration)}
        signed: bool | list[bool] = [by_op[n] for n in ctx.layers]
    else:
        signed = run.signed
    widths = [(i, f) for i in run.integer_bits for f in run.fraction_bits]
    judd = search.judd_descent(ev, ctx.layers, ev.float_accuracy, widths, run.tolerances, run.cost, run.weights, signed, executor=ex,
                               budget=run.budget())
    rows = []
    for tol in run.tolerances:
        g = judd.greedy.best.get(f"{tol:.0%}")
        u = judd.best_uniform(tol, ev.float_accuracy, run.cost)
        rows.append({
            "tolerance": tol,
            "greedy_widths": _widths(g.plan, ctx.layers) if g else None, "greedy_cost": g.value(run.cost) if g else None,
            "greedy_accuracy": g.accuracy if g else None,
            "uniform_width": u.labels["uniform"] if u else None, "uniform_cost": u.value(run.cost) if u else None,
            "uniform_accuracy": u.accuracy if u else None,
        })
    points = [search.labelled(p, search="uniform") for p in judd.uniform.points] + [search.labelled(p, search="greedy") for p in judd.greedy.points]
    summary = {"layers": ctx.layers, "signed": signed, "start": list(judd.start) if judd.start else None, "cost": run.cost,
               "float_accuracy": ev.float_accuracy, "rows": rows, "qat": run.qat, "complete": judd.uniform.complete and judd.greedy.complete}
    return points, summary, ev


def _run_bounds(ctx: _Context, run: BoundsRun, ex: StoredExecutor):
    ev = ctx.evaluator
    x, y = ctx.eval_set.tensors(limit=run.estimation)
    key = content_key("sakr-bounds", ev.fingerprint, run.bits, run.estimation)
    stored = ctx.store.get_artifact(key)
    if stored is None:
        bounds, pairs, offset = search.sakr_sweep(ctx.model, x, y, run.bits)
        stored = {"e_a": bounds.e_a, "e_w": bounds.e_w, "offset": offset, "float_error": bounds.float_error,
                  "pairs": [list(p) for p in pairs], "theorem1": [bounds.theorem1(*p) for p in pairs],
                  "theorem2": [bounds.theorem2[p] for p in pairs],
                  "plans": [bounds.plan(*p).to_dict() for p in pairs]}
        ctx.store.put_artifact(key, stored)
    pairs = [tuple(p) for p in stored["pairs"]]
    rows = [{"b_a": a, "b_w": w, "offset": w - a, "theorem1": t1, "theorem2": t2}
            for (a, w), t1, t2 in zip(pairs, stored["theorem1"], stored["theorem2"])]
    points: list[Point] = []
    complete = True
    if run.simulate:
        res = search.sweep(ev, [PrecisionPlan.from_dict(p) for p in stored["plans"]], ex, run.budget())
        points, complete = [search.labelled(p, b_a=a, b_w=w) for p, (a, w) in zip(res.points, pairs)], res.complete
        for row, p in zip(rows, points):
            row["simulated_mismatch"] = p.mismatch
            row["simulated_error"] = 1 - p.accuracy
    summary = {"e_a": stored["e_a"], "e_w": stored["e_w"], "rule_offset": stored["offset"], "float_error": 1 - ev.float_accuracy,
               "estimation_examples": len(x), "rows": rows, "complete": complete}
    return points, summary, ev


_RUNNERS = {"plans": _run_plans, "sweep": _run_plans, "sensitivity": _run_sensitivity, "greedy": _run_greedy, "bounds": _run_bounds}


# ----------------------------------------------------------------------------------- study
@dataclass
class StudyResult:
    """Where a study's results are and what it cost."""

    out: Path
    store_path: Path
    evaluated: int
    reused: int
    seconds: float
    report: Path | None = None


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description:24s}"), BarColumn(), MofNCompleteColumn(), TextColumn("running {task.fields[running]}"),
                    TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), disable=not enabled)


def run_study(
    config: str | Path | dict[str, Any] | StudyConfig,
    out: str | Path | None = None,
    executor: Any = None,
    resume: bool = False,
    data_dir: str | Path | None = None,
    progress: bool = True,
    report: bool = True,
    log: Callable[[str], None] = print,
) -> StudyResult:
    """Run a study: float model, every run's points (stored as they complete), summaries, report.

    A study whose store already holds finished runs is refused unless `resume` (then finished runs
    are read back and unfinished ones continue, reusing every stored point).
    """
    start = time.perf_counter()
    if isinstance(config, StudyConfig):
        cfg, base = config, Path.cwd()
    else:
        cfg, base = load_config(config)
    out = Path(out) if out is not None else Path("results") / cfg.name
    store = Store(out / "results.sqlite")
    try:
        if store.runs(cfg.name) and not resume:
            raise ValueError(f"{out} already holds results of study {cfg.name!r}; pass --resume to continue it "
                             "(stored points are reused) or choose another --out")
        d_dir = data_dir or (None if cfg.dataset.data_dir is None else base / cfg.dataset.data_dir)
        norm = _normalize(cfg)
        train_set = data.load(cfg.dataset.name, "train", d_dir, normalize=norm)
        eval_set = data.load(cfg.dataset.name, cfg.dataset.eval_split, d_dir, normalize=norm)
        if cfg.dataset.limit:
            eval_set = eval_set.subset(slice(0, cfg.dataset.limit))
        fm = float_model(cfg, base, train_set, log)
        calibration = train_set.tensors(limit=cfg.evaluation.calibration)[0]
        ev_settings = dict(costs=cfg.evaluation.costs, r2_inputs=cfg.evaluation.r2_inputs, calibration=calibration,
                           batch_size=cfg.evaluation.batch_size, rounding=cfg.evaluation.rounding, threads=cfg.evaluation.threads)
        evaluator = Evaluator(fm.model, eval_set, **ev_settings)
        qat_cache: list[Evaluator] = []

        def qat_evaluator() -> Evaluator:
            if not qat_cache:
                qat_cache.append(Evaluator(fm.model, eval_set, qat=Qat(train_set, cfg.qat.config()), **ev_settings))
            return qat_cache[0]

        table = layers(fm.model, calibration[:1])
        op_names = [o.name for o in table if o.macs]
        ctx = _Context(cfg, fm.model, evaluator, qat_evaluator, op_names, calibration, eval_set, store)
        info = {"config": cfg.model_dump(mode="json"), "checkpoint": str(fm.checkpoint), "trained": fm.trained,
                "train_seconds": fm.seconds, "float_accuracy": evaluator.float_accuracy, "layers": ctx.layers,
                "macs_emulated": table.coverage, "emulation": table.coverage_note(),
                "eval_examples": len(eval_set), "store": "results.sqlite"}
        write_atomic(out / "study.json", json.dumps(info, indent=1) + "\n")
        log(f"study {cfg.name}: float accuracy {evaluator.float_accuracy:.4f} on {len(eval_set)} {cfg.dataset.eval_split} examples")
        inner = executor or InProcess()
        evaluated = reused = 0
        with _progress(progress) as bar:
            for run in cfg.runs:
                run_key = content_key(run.model_dump(mode="json"), evaluator.fingerprint, cfg.qat.model_dump() if run.qat else None)
                done = store.run_summary(cfg.name, run.name)
                if done is not None and done.get("config_key") == run_key:
                    log(f"run {run.name}: finished earlier, read from the store")
                    continue
                task = bar.add_task(f"{run.kind} {run.name}", total=0, running=0)
                ex = StoredExecutor(inner, store, bar, task)
                t0 = time.perf_counter()
                points, summary, ev = _RUNNERS[run.kind](ctx, run, ex)
                summary.update(config_key=run_key, seconds=time.perf_counter() - t0, evaluated=ex.evaluated, reused=ex.reused)
                store.finish_run(cfg.name, run.name, run.kind, summary, [ev.point_key(p.plan) for p in points], [p.labels for p in points])
                evaluated += ex.evaluated
                reused += ex.reused
                log(f"run {run.name}: {len(points)} points ({ex.evaluated} evaluated, {ex.reused} from the store) in {summary['seconds']:.1f} s")
        result = StudyResult(out, store.path, evaluated, reused, time.perf_counter() - start)
    finally:
        store.close()
    if report:
        from .report import write_report

        result.report = write_report(out)
    return result

"""A study's config: its schema (validated by pydantic; unknown keys, wrong types and impossible
values are errors that name the key) and `load_config`.

Training and fine-tuning defaults come from `train.TrainConfig` and `train.QAT_DEFAULTS`, so the
schema, the Python API and the command line agree. Each run is validated by its kind's own config
class (`study.runs`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from .. import data, models
from ..errors import did_you_mean
from ..files import read_yaml
from ..search.evaluate import COST_MODELS
from ..train import QAT_DEFAULTS, TrainConfig
from .runs import RUN_KINDS, RunConfig, Strict

__all__ = ["DatasetSettings", "ModelSettings", "TrainSettings", "QatSettings", "EvaluationSettings", "ReportSettings", "StudyConfig",
           "load_config", "DEFAULT_COSTS"]

DEFAULT_COSTS = ["traffic", "energy_uj", "mac_speedup", "mac_energy_saving", "full_adders", "parameter_bits"]
_TRAIN, _QAT = TrainConfig(), QAT_DEFAULTS


class DatasetSettings(Strict):
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


class ModelSettings(Strict):
    """Which network: registered `name` or a user's `module` ("pkg.mod:factory" or
    "file.py:factory"), with weights from `checkpoint` or from float training."""

    name: str | None = None
    module: str | None = None
    checkpoint: str | None = None
    width: float = Field(1.0, gt=0)
    normalize: Literal["standard", "unit", "caffe"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSettings:
        if (self.name is None) == (self.module is None):
            raise ValueError("give exactly one of model.name (a registered network) and model.module ('pkg.mod:factory')")
        if self.name is not None and self.name not in models.names():
            raise ValueError(f"unknown model {self.name!r}{did_you_mean(self.name, models.names())}; registered: {', '.join(models.names())}")
        if self.module is not None and ":" not in self.module:
            raise ValueError(f"model.module must look like 'package.module:factory' or 'file.py:factory', got {self.module!r}")
        return self


class _Training(Strict):
    """Training settings; see `train.TrainConfig` (the defaults are its own)."""

    epochs: int = Field(_TRAIN.epochs, ge=1)
    batch_size: int = Field(_TRAIN.batch_size, ge=1)
    lr: float = Field(_TRAIN.lr, gt=0)
    optimizer: Literal["sgd", "adam"] = _TRAIN.optimizer  # type: ignore[assignment]
    momentum: float = Field(_TRAIN.momentum, ge=0, lt=1)
    weight_decay: float = Field(_TRAIN.weight_decay, ge=0)
    schedule: Literal["cosine", "step", "constant"] = _TRAIN.schedule  # type: ignore[assignment]
    seed: int = _TRAIN.seed
    augment: bool = _TRAIN.augment
    max_batches: int | None = Field(_TRAIN.max_batches, ge=1, description="stop each epoch after this many batches (quick runs)")

    def config(self) -> TrainConfig:
        """The `TrainConfig` these settings describe."""
        names = {f.name for f in fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in self.model_dump().items() if k in names})


class TrainSettings(_Training):
    """Float training (used when the model has no checkpoint)."""

    threads: int | None = Field(None, ge=1, description="torch threads while training (None: all)")


class QatSettings(_Training):
    """Quantization-aware fine-tuning for runs with `qat: true` (it runs inside each evaluation,
    with `evaluation.threads`); defaults from `train.QAT_DEFAULTS`."""

    epochs: int = Field(_QAT.epochs, ge=1)
    lr: float = Field(_QAT.lr, gt=0)
    optimizer: Literal["sgd", "adam"] = _QAT.optimizer  # type: ignore[assignment]
    weight_decay: float = Field(_QAT.weight_decay, ge=0)


class EvaluationSettings(Strict):
    """How points are measured."""

    costs: list[str] = Field(default_factory=lambda: list(DEFAULT_COSTS))
    r2_inputs: int = Field(10, ge=2)
    rounding: Literal["nearest", "stochastic", "floor", "toward_zero"] = "nearest"
    batch_size: int = Field(1000, ge=1)
    calibration: int = Field(256, ge=1, description="training examples that adaptive formats take ranges from")
    threads: int = Field(1, ge=1, description="torch threads per evaluation (results depend on it)")
    seed: int = Field(0, ge=0, description="with stochastic rounding, each point draws from a generator seeded by its key and this")

    @field_validator("costs")
    @classmethod
    def _known_costs(cls, v: list[str]) -> list[str]:
        for c in v:
            if c not in COST_MODELS:
                raise ValueError(f"unknown cost model {c!r}{did_you_mean(c, COST_MODELS)}; known: {', '.join(COST_MODELS)}")
        return v


class ReportSettings(Strict):
    """The report's title and whether published numbers sit beside ours."""

    title: str | None = None
    compare: bool = True


class StudyConfig(Strict):
    """One study: see docs/studies.md."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    description: str = ""
    dataset: DatasetSettings
    model: ModelSettings
    train: TrainSettings | None = None
    qat: QatSettings = QatSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    runs: list[SerializeAsAny[RunConfig]] = Field(min_length=1)
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
            r.check(self)
        return self


def _location(loc: tuple[Any, ...], prefix: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in (*prefix, *loc)) or "(top level)"


def _describe(err: ValidationError, prefix: tuple[Any, ...] = ()) -> list[str]:
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        got = f" (got {e['input']!r})" if e["type"] != "missing" and not isinstance(e.get("input"), (dict, list)) else ""
        lines.append(f"  {_location(tuple(e['loc']), prefix)}: {msg}{got}")
    return lines


def _run(i: int, raw: Any, errors: list[str]) -> RunConfig | None:
    """Run `i` validated by its kind's config class (errors appended, located under runs.i)."""
    if not isinstance(raw, dict):
        errors.append(f"  runs.{i}: a run is a mapping with a name and a kind (got {raw!r})")
        return None
    kind = RUN_KINDS.get(raw.get("kind"))  # type: ignore[arg-type]
    if kind is None:
        errors.append(f"  runs.{i}.kind: unknown run kind {raw.get('kind')!r}{did_you_mean(raw.get('kind'), RUN_KINDS)}; "
                      f"kinds: {', '.join(RUN_KINDS)}")
        return None
    try:
        return kind.config.model_validate(raw)
    except ValidationError as err:
        errors += _describe(err, ("runs", i))
        return None


def validate(raw: dict[str, Any], where: str) -> StudyConfig:
    """A StudyConfig from plain data; every error, located by key path, in one ValueError."""
    errors: list[str] = []
    runs = raw.get("runs")
    parsed = [_run(i, r, errors) for i, r in enumerate(runs)] if isinstance(runs, list) else runs
    try:
        cfg = StudyConfig.model_validate({**raw, "runs": [r for r in parsed if r is not None] if isinstance(parsed, list) else parsed})
    except ValidationError as err:
        errors = _describe(err) + errors
    if errors:
        raise ValueError(f"{where} is not a valid study config:\n" + "\n".join(errors))
    return cfg


def load_config(source: str | Path | dict[str, Any] | StudyConfig) -> tuple[StudyConfig, Path]:
    """A validated config and the folder its relative paths are relative to."""
    if isinstance(source, StudyConfig):
        return source, Path.cwd()
    if isinstance(source, dict):
        raw, base, where = source, Path.cwd(), "config"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"study config {str(path)!r} does not exist")
        raw, base, where = read_yaml(path), path.resolve().parent, str(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a study config is a mapping (name, dataset, model, runs, ...)")
    return validate(raw, where), base

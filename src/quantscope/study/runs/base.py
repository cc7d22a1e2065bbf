"""What every run kind is made of: its config (a pydantic model), its summary (a frozen value), the
context it executes in, and the `RunKind` record the registry keeps.

A run kind is one module (see `plans`, `sweep`, `sensitivity`, `greedy`, `bounds`) defining
`KIND = RunKind(name, config, summary, execute, tables, figures)`:

- `config`: a `RunConfig` subclass with `kind: Literal[name]` and the run's settings;
- `summary`: a frozen `RunSummary` subclass (stored as JSON, read back typed);
- `execute(ctx, run, executor) -> Outcome`: the points (through the stored executor) and summary;
- `tables(results, run, compare) -> list[Table]` and `figures() -> list[FigureSpec]` for the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from torch import nn

from ... import data, search
from ...formats import parse_format
from ...search.evaluate import Evaluator, Point
from ...store import Store

if TYPE_CHECKING:
    from ...emulation import OpTable
    from ...report.format import FigureSpec, Table
    from ...report.results import RunResult, StudyResults
    from ..config import StudyConfig
    from ..stored import StoredExecutor

__all__ = ["FormatStr", "RunConfig", "RunSummary", "RunContext", "Outcome", "RunKind", "Strict"]


class Strict(BaseModel):
    """Config models: unknown keys are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_format(v: str) -> str:
    parse_format(v)
    return v


#: a format string, checked when the config is read
FormatStr = Annotated[str, AfterValidator(_check_format)]


class RunConfig(Strict):
    """Settings every run has: a name, QAT on or off, a rounding mode, and an evaluation budget."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    kind: str
    qat: bool = False
    rounding: Literal["nearest", "stochastic", "floor", "toward_zero"] | None = Field(
        None, description="this run's rounding mode (default: the study's evaluation.rounding); e.g. Hill's truncation, toward_zero")
    max_evaluations: int | None = Field(None, ge=1, description="stop the run cleanly after this many points")

    def budget(self) -> search.Budget:
        """The run's evaluation budget."""
        return search.Budget(self.max_evaluations)

    def check(self, study: StudyConfig) -> None:
        """Raise ValueError where the run does not fit the rest of the study (override per kind)."""

    def check_ops(self, table: OpTable) -> None:
        """Raise ValueError where the run names an op the model does not have (override per kind);
        called for every run before any run starts."""


@dataclass(frozen=True)
class RunSummary:
    """What a finished run reports; kinds add their own fields. The runner fills in the
    bookkeeping fields (rounding, config_key, seconds, evaluated, reused)."""

    complete: bool = True
    qat: bool = False
    rounding: str = "nearest"
    config_key: str = ""
    seconds: float = 0.0
    evaluated: int = 0
    reused: int = 0
    kind_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        """The summary a `to_dict` stored (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class RunContext:
    """Everything a run needs from its study: the float model, evaluators, op names, data (the
    evaluation set, and `split(name)` for any split of the dataset), store."""

    cfg: StudyConfig
    model: nn.Module
    evaluator: Evaluator
    qat_evaluator: Callable[[], Evaluator]
    layers: list[str]
    calibration: torch.Tensor
    eval_set: data.Dataset
    store: Store
    split: Callable[[str], data.Dataset]
    _derived: dict[tuple[bool, str], Evaluator] = field(default_factory=dict)

    def evaluator_for(self, run: RunConfig) -> Evaluator:
        """The QAT evaluator for a run with `qat: true`, else the plain one, in the run's rounding mode."""
        base = self.qat_evaluator() if run.qat else self.evaluator
        if run.rounding is None or run.rounding == base.rounding:
            return base
        key = (run.qat, run.rounding)
        if key not in self._derived:
            self._derived[key] = base.with_rounding(run.rounding)
        return self._derived[key]


@dataclass
class Outcome:
    """A finished run's points (in order, with labels), summary and the evaluator that keyed them."""

    points: list[Point]
    summary: RunSummary
    evaluator: Evaluator
    #: what the user must know about the result (a search that could not start), shown as warnings
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunKind:
    """One run kind: its config, summary, how it executes, and its tables and figures."""

    name: str
    config: type[RunConfig]
    summary: type[RunSummary]
    execute: Callable[[RunContext, Any, StoredExecutor], Outcome]
    tables: Callable[[StudyResults, RunResult, bool], list[Table]]
    figures: Callable[[], list[FigureSpec]] = lambda: []
    version: int = 1  # part of a finished run's key: a bump redoes runs stored by older releases (their points are reused)

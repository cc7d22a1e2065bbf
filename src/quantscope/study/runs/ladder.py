"""Run kind `ladder`: per-op choice among a ladder of formats (e.g. MXFP8, MXFP6, MXFP4, or int8,
int4<group=32>, ...): one op at a time on every rung (sensitivity), then the greedy descent that
moves one op a rung down per step, with the best plan per tolerance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from ... import search
from ...report.format import Table, num, pct
from ...report.glossary import header
from .base import FormatStr, Outcome, RunConfig, RunContext, RunKind, RunSummary

if TYPE_CHECKING:
    from ...report.results import RunResult, StudyResults
    from ..config import StudyConfig
    from ..stored import StoredExecutor

__all__ = ["LadderRun", "LadderSummary", "KIND"]

Target = Literal["weights", "data", "bias", "rhs"]
_DEFAULT_TARGETS: list[Target] = ["weights", "data"]


class LadderRun(RunConfig):
    """A format ladder, widest first, applied per op to `targets`."""

    kind: Literal["ladder"]
    formats: list[FormatStr] = Field(min_length=2)
    targets: list[Target] = Field(default_factory=lambda: list(_DEFAULT_TARGETS), min_length=1)
    tolerances: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=lambda: [0.01, 0.02, 0.05])
    cost: str = "parameter_bits"
    sensitivity: bool = True

    def check(self, study: StudyConfig) -> None:
        """The cost minimized must be measured."""
        if self.cost not in study.evaluation.costs:
            raise ValueError(f"run {self.name!r} minimizes {self.cost!r}, which is not in evaluation.costs {study.evaluation.costs}")


@dataclass(frozen=True)
class LadderRow:
    """The best greedy plan within one tolerance: each op's format, its cost and accuracy."""

    tolerance: float
    formats: list[str] | None
    cost: float | None
    accuracy: float | None


@dataclass(frozen=True)
class LadderSummary(RunSummary):
    """The ops, the ladder, the cost, and one row per tolerance."""

    layers: list[str] = field(default_factory=list)
    ladder: list[str] = field(default_factory=list)
    cost: str = "parameter_bits"
    float_accuracy: float = 0.0
    rows: tuple[LadderRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LadderSummary:
        base = super().from_dict(d)
        assert isinstance(base, LadderSummary)
        return cls(**{**asdict(base), "rows": tuple(LadderRow(**r) for r in d.get("rows", ()))})


def execute(ctx: RunContext, run: LadderRun, ex: StoredExecutor) -> Outcome:
    """One op at a time on every rung (the others on the top rung), then the greedy descent."""
    ev = ctx.evaluator_for(run)
    points, complete = [], True
    if run.sensitivity:
        top = search.ladder_plan(ctx.layers, [0] * len(ctx.layers), run.formats, run.targets)
        sens = search.format_sensitivity(ev, ctx.layers, top, run.formats[1:], run.targets, executor=ex, budget=run.budget())
        points += [search.labelled(p, search="one op") for p in sens.points]
        complete = sens.complete
    res = search.SearchResult(complete=False)
    if complete:
        res = search.ladder_greedy(ev, ctx.layers, run.formats, ev.float_accuracy, run.tolerances, run.cost, run.targets,
                                   executor=ex, budget=run.budget())
        points += [search.labelled(p, search="greedy") for p in res.points]
    rows = []
    for tol in run.tolerances:
        best = res.best.get(f"{tol:.0%}")
        rows.append(LadderRow(tol, [run.formats[r] for r in best.labels["rungs"]] if best else None,
                              best.value(run.cost) if best else None, best.accuracy if best else None))
    summary = LadderSummary(complete=complete and res.complete, qat=run.qat, layers=list(ctx.layers), ladder=list(run.formats),
                            cost=run.cost, float_accuracy=ev.float_accuracy, rows=tuple(rows))
    return Outcome(points, summary, ev)


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """The narrowest rung per op on its own (within 1%), and the best greedy plan per tolerance."""
    s = run.summary
    out = []
    one = [p for p in run.points if p["labels"].get("search") == "one op"]
    if one:
        rows = []
        for layer in s.layers:
            ok = [p["labels"]["format"] for p in one if p["labels"]["layer"] == layer and results.relative(p["accuracy"]) >= 0.99]
            narrowest = max(ok, key=s.ladder.index) if ok else s.ladder[0]
            rows.append([layer, narrowest, pct(min((p["accuracy"] for p in one if p["labels"]["layer"] == layer), default=None))])
        out.append(Table(f"{run.name}: one op at a time", f"The narrowest rung of {', '.join(s.ladder)} that keeps 99% of float "
                         "accuracy with every other op on the top rung, and the op's worst accuracy over the rungs.",
                         ["op", "narrowest rung within 1%", "worst accuracy (%)"], rows))
    rows = [[f"{r.tolerance:.0%}", "–" if r.formats is None else ", ".join(f"{op}: {f}" for op, f in zip(s.layers, r.formats)),
             num(r.cost), pct(r.accuracy)] for r in s.rows]
    out.append(Table(f"{run.name}: greedy per-op formats", f"Greedy descent down the ladder {' > '.join(s.ladder)} (one op one rung "
                     "per step, the most accurate kept); the cheapest plan within each tolerance of float accuracy.",
                     ["tolerance", "format per op", header(s.cost), "accuracy (%)"], rows))
    return out


KIND = RunKind("ladder", LadderRun, LadderSummary, execute, tables)

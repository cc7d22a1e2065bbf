"""A toy run kind, the whole of it in this one module: evaluate one format at a few widths of
its integer part, and report accuracy per width. `test_run_kinds.py` registers it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from quantscope import search
from quantscope.plan import PrecisionPlan
from quantscope.report.format import Table, pct
from quantscope.study.runs import Outcome, RunConfig, RunContext, RunKind, RunSummary


class WidthsRun(RunConfig):
    """Uniform fixed<bits,frac> for each of `bits`."""

    kind: Literal["widths"]
    bits: list[int] = Field(min_length=1)
    frac: int = 4


@dataclass(frozen=True)
class WidthsSummary(RunSummary):
    """The narrowest width that kept `keep` of the float accuracy (None: none did)."""

    narrowest: int | None = None
    keep: float = 0.99


def execute(ctx: RunContext, run: WidthsRun, ex) -> Outcome:
    """Evaluate each width; the narrowest within 1% of float wins."""
    plans = [PrecisionPlan.uniform(f"fixed<{b},{run.frac}>", f"fixed<{b},{run.frac}>") for b in run.bits]
    res = search.sweep(ctx.evaluator, plans, ex, run.budget())
    points = [search.labelled(p, bits=b) for b, p in zip(run.bits, res.points)]
    base = ctx.evaluator(PrecisionPlan()).accuracy
    ok = [b for b, p in zip(run.bits, points) if p.accuracy >= 0.99 * base]
    return Outcome(points, WidthsSummary(complete=res.complete, narrowest=min(ok, default=None)), ctx.evaluator)


def tables(results, run, compare: bool) -> list[Table]:
    """One row per width."""
    rows = [[str(p["labels"]["bits"]), pct(p["accuracy"])] for p in run.points]
    return [Table(f"{run.name}: widths", f"narrowest within 1%: {run.summary.narrowest}", ["bits", "accuracy (%)"], rows)]


KIND = RunKind("widths", WidthsRun, WidthsSummary, execute, tables)

"""Run kind `sweep`: uniform plans over a grid of formats (Hill's design space, Judd's uniform
widths); reported with each point's measurements and costs, Hill's fastest format within 1%, and
Hill's published AlexNet MAC figures beside the model's where the grid has them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from ... import published, search
from ...formats import parse_format
from ...plan import PrecisionPlan
from ...report.format import Table, num, pct
from ...report.glossary import header
from .base import FormatStr, Outcome, RunConfig, RunContext, RunKind, Strict
from .plans import PlansSummary, evaluate_labelled

if TYPE_CHECKING:
    from ...report.results import RunResult, StudyResults
    from ..stored import StoredExecutor

__all__ = ["SweepRun", "FloatGrid", "FixedGrid", "KIND"]


class FloatGrid(Strict):
    """Every custom float float<E,M> with E in `exponents` and M in `mantissas` (each one a format
    quantscope emulates inside float32: E <= 8 and M <= 23 with the default bias)."""

    exponents: list[int] = Field(min_length=1)
    mantissas: list[int] = Field(min_length=1)


class FixedGrid(Strict):
    """Fixed point I.F for every pair (I counts the sign bit when signed)."""

    integer_bits: list[int] = Field(min_length=1)
    fraction_bits: list[int] = Field(min_length=1)
    signed: bool = True


Target = Literal["weights", "data", "bias", "accumulator"]
_DEFAULT_TARGETS: list[Target] = ["weights", "data"]


class SweepRun(RunConfig):
    """Uniform plans over a grid: explicit `formats`, custom floats, fixed points, or all three,
    applied to `targets`."""

    kind: Literal["sweep"]
    formats: list[FormatStr] = Field(default_factory=list)
    float: FloatGrid | None = None
    fixed: FixedGrid | None = None
    targets: list[Target] = Field(default_factory=lambda: list(_DEFAULT_TARGETS), min_length=1)

    @model_validator(mode="after")
    def _some(self) -> SweepRun:
        if not (self.formats or self.float or self.fixed):
            raise ValueError("a sweep needs formats, a float grid or a fixed grid")
        self.plan_list()  # every grid value is a format, checked before any work starts
        return self

    def plan_list(self) -> list[tuple[str, PrecisionPlan]]:
        """(format string, uniform plan) for every distinct format of the grid."""
        fmts = [parse_format(f) for f in self.formats]
        if self.float:
            fmts += search.float_formats(self.float.exponents, self.float.mantissas)
        if self.fixed:
            fmts += search.fixed_formats(self.fixed.integer_bits, self.fixed.fraction_bits, self.fixed.signed)
        return [(str(f), PrecisionPlan.uniform(**{t: f for t in self.targets})) for f in dict.fromkeys(fmts)]


@dataclass(frozen=True)
class SweepSummary(PlansSummary):
    """How many grid points were evaluated."""


def execute(ctx: RunContext, run: SweepRun, ex: StoredExecutor) -> Outcome:
    """Evaluate every grid point."""
    return evaluate_labelled(ctx, run, run.plan_list(), ex, SweepSummary)


def _hill_caption(results: StudyResults, run: RunResult) -> str:
    """Hill's fastest format within 1%, and the MAC model at Hill's published AlexNet choices."""
    caption = ""
    fast = [p for p in run.points if "mac_speedup" in p["costs"] and results.relative(p["accuracy"]) >= 0.99]
    if fast:
        best = max(fast, key=lambda p: p["costs"]["mac_speedup"])
        caption += (f" Fastest within 1% of float accuracy (Hill et al., Figure 10): {best['labels'].get('label', '')}, "
                    f"{best['costs']['mac_speedup']:.2f}x MAC speedup at fixed area, {100 * results.relative(best['accuracy']):.2f}% of float accuracy.")
    hill = {h["format"]: h for h in published.HILL_POINTS}
    seen = [p for p in run.points if p["labels"].get("label") in hill and "mac_speedup" in p["costs"]]
    if seen:
        caption += " MAC model (Hill's numbers held out of its fit) at Hill et al.'s AlexNet choices (published in parentheses): " + "; ".join(
            f"{p['labels']['label']} {p['costs']['mac_speedup']:.2f}x speedup ({hill[p['labels']['label']]['speedup']}x)"
            + (f", {p['costs']['mac_energy_saving']:.2f}x energy saving ({hill[p['labels']['label']]['energy_saving']}x)"
               if "mac_energy_saving" in p["costs"] else "") for p in seen) + "."
    return caption


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """Every grid point: accuracy, relative accuracy, mismatch, R², the task's metrics, costs."""
    costs = list(dict.fromkeys(c for p in run.points for c in p["costs"]))
    metrics = list(dict.fromkeys(m for p in run.points for m in p.get("metrics", {})))
    rows = [[p["labels"].get("label", ""), pct(p["accuracy"]), num(results.relative(p["accuracy"]), 4), pct(p["mismatch"]),
             num(p["r2"], 4), *(num(p.get("metrics", {}).get(m)) for m in metrics), *(num(p["costs"].get(c)) for c in costs)]
            for p in run.points]
    rounding = "" if run.summary.rounding == "nearest" else f", every value rounded {run.summary.rounding.replace('_', ' ')}"
    caption = f"{len(rows)} uniform plans" + (" after QAT" if run.summary.qat else "") + rounding + "." + _hill_caption(results, run)
    columns = ["format", "accuracy (%)", "relative", "mismatch (%)", "R²", *map(header, metrics), *map(header, costs)]
    return [Table(f"{run.name}: sweep", caption, columns, rows)]


KIND = RunKind("sweep", SweepRun, SweepSummary, execute, tables)

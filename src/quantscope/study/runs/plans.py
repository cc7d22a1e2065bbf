"""Run kind `plans`: named plans, evaluated as they are; reported like Hashemi et al.'s Tables
IV-V (accuracy, accelerator energy and saving, the published numbers beside ours)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from ... import published, search
from ...plan import PrecisionPlan
from ...report.format import Table, diff, num, pct, plan_formats
from ...report.glossary import header
from .base import Outcome, RunConfig, RunContext, RunKind, RunSummary

if TYPE_CHECKING:
    from ...emulation import OpTable
    from ...report.results import RunResult, StudyResults
    from ..stored import StoredExecutor

__all__ = ["PlansRun", "PlansSummary", "KIND", "evaluate_labelled"]


class PlansRun(RunConfig):
    """Named plans, each a format string (weights and data), {weights, data, bias, accumulator,
    ...}, or a full plan {default: ..., overrides: ...}."""

    kind: Literal["plans"]
    plans: dict[str, str | dict[str, Any]] = Field(min_length=1)

    @field_validator("plans")
    @classmethod
    def _valid(cls, v: dict[str, Any]) -> dict[str, Any]:
        for label, spec in v.items():
            try:
                PrecisionPlan.from_spec(spec)
            except ValueError as err:
                raise ValueError(f"plan {label!r}: {err}") from None
        return v

    def plan_list(self) -> list[tuple[str, PrecisionPlan]]:
        """(label, plan) in the config's order."""
        return [(label, PrecisionPlan.from_spec(spec)) for label, spec in self.plans.items()]

    def check_ops(self, table: OpTable) -> None:
        """Every override of every plan names an op of the model."""
        for label, plan in self.plan_list():
            try:
                plan.validate([o.name for o in table.ops], [o.name for o in table.elementwise])
            except ValueError as err:
                raise ValueError(f"run {self.name!r}, plan {label!r}: {err}") from None


@dataclass(frozen=True)
class PlansSummary(RunSummary):
    """How many plans were evaluated."""

    points: int = 0


def evaluate_labelled(ctx: RunContext, run: RunConfig, labelled: list[tuple[str, PrecisionPlan]], ex: StoredExecutor,
                      summary: type[PlansSummary]) -> Outcome:
    """Evaluate (label, plan) pairs in order within the run's budget; points labelled."""
    ev = ctx.evaluator_for(run)
    res = search.sweep(ev, [p for _, p in labelled], ex, run.budget())
    points = [search.labelled(p, label=label) for (label, _), p in zip(labelled, res.points)]
    return Outcome(points, summary(complete=res.complete, qat=run.qat, points=len(points)), ev)


def execute(ctx: RunContext, run: PlansRun, ex: StoredExecutor) -> Outcome:
    """Evaluate the named plans."""
    return evaluate_labelled(ctx, run, run.plan_list(), ex, PlansSummary)


def _published(net: str | None, label: str) -> tuple[float | None, float | None, float | None]:
    """Hashemi's (accuracy %, energy uJ, saving %) for a labelled precision, where published."""
    names = list(published.HASHEMI_PRECISIONS)
    if label not in names:
        return None, None, None
    i = names.index(label)
    return tuple(None if net not in table else table[net][i]  # type: ignore[return-value]
                 for table in (published.HASHEMI_ACCURACY_PCT, published.HASHEMI_ENERGY_UJ, published.HASHEMI_SAVINGS_PCT))


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """Hashemi Table IV style: precision, accuracy, energy, saving (published beside ours)."""
    net = results.model
    has_published = compare and net in published.HASHEMI_ENERGY_UJ and any(
        p["labels"].get("label") in published.HASHEMI_PRECISIONS for p in run.points)
    base = next((p["costs"].get("energy_uj") for p in run.points if plan_formats(p) == ("float32", "float32")), None)
    columns = ["precision", "weights", "data", "accuracy (%)", header("energy_uj"), "saving (%)", header("mac_speedup")]
    if has_published:
        columns += ["published accuracy (%)", "Δ accuracy", "published energy (µJ)", "Δ energy (%)", "published saving (%)", "Δ saving"]
    rows = []
    for p in run.points:
        label, energy = p["labels"].get("label", ""), p["costs"].get("energy_uj")
        saving = None if base is None or energy is None else 100 * (1 - energy / base)
        row = [label, *plan_formats(p), pct(p["accuracy"]), num(energy), num(saving, 2), num(p["costs"].get("mac_speedup"))]
        if has_published:
            acc, e, s = _published(net, label)
            row += [num(acc, 2), diff(100 * p["accuracy"], acc), num(e),
                    "–" if e is None or energy is None else f"{100 * (energy / e - 1):+.1f}", num(s, 2), diff(saving, s)]
        rows.append(row)
    qat = " after quantization-aware fine-tuning" if run.summary.qat else ""
    caption = f"Accuracy{qat} and the DianNao-like accelerator's energy per image (Hashemi et al., Tables III-V)."
    if has_published:
        caption += f" Published columns: Hashemi et al. for {net}; Δ = ours − published."
    return [Table(f"{run.name}: precisions", caption, columns, rows)]


KIND = RunKind("plans", PlansRun, PlansSummary, execute, tables)

"""Run kind `sensitivity`: one op at a time, the others at a reference precision (Judd et al.,
Figure 3): weight fraction bits, data integer bits, data fraction bits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from matplotlib.figure import Figure
from pydantic import Field

from ... import search
from ...errors import did_you_mean
from ...report.format import RELATIVE, FigureSpec, Table
from .base import FormatStr, Outcome, RunConfig, RunContext, RunKind, RunSummary

if TYPE_CHECKING:
    from ...emulation import OpTable
    from ...report.results import RunResult, StudyResults
    from ..stored import StoredExecutor

__all__ = ["SensitivityRun", "SensitivitySummary", "KIND"]


class SensitivityRun(RunConfig):
    """Judd Figure 3: one op at a time (all product ops by default), the others at the reference
    (fixed-point I.F data and `reference_weights`)."""

    kind: Literal["sensitivity"]
    layers: list[str] | None = None
    reference_weights: FormatStr = "fixed<16,12>"
    reference_data: tuple[int, int] = (16, 8)
    weight_fraction_bits: list[int] = Field(default_factory=lambda: list(range(0, 13)))
    data_integer_bits: list[int] = Field(default_factory=lambda: list(range(1, 17)))
    data_fraction_bits: list[int] = Field(default_factory=lambda: list(range(0, 9)))

    def check_ops(self, table: OpTable) -> None:
        """The ops named in `layers` are product ops of the model."""
        ops = [o.name for o in table if o.macs]
        for layer in self.layers or []:
            if layer not in ops:
                raise ValueError(f"run {self.name!r}: unknown op {layer!r}{did_you_mean(layer, ops)}; product ops: {', '.join(ops)}")


@dataclass(frozen=True)
class SensitivitySummary(RunSummary):
    """The ops varied and the float accuracy they are measured against."""

    layers: list[str] = field(default_factory=list)
    float_accuracy: float = 0.0


def execute(ctx: RunContext, run: SensitivityRun, ex: StoredExecutor) -> Outcome:
    """Vary each op's weights and data, the others at the reference."""
    ev = ctx.evaluator_for(run)
    layers = run.layers or ctx.layers
    i, f = run.reference_data
    reference = search.data_plan(ctx.layers, [(i, f)] * len(ctx.layers), weights=run.reference_weights)
    res = search.sensitivity(ev, layers, reference, run.weight_fraction_bits, run.data_integer_bits, run.data_fraction_bits,
                             reference_data_fraction=f, reference_data_integer=i, executor=ex, budget=run.budget())
    summary = SensitivitySummary(complete=res.complete, qat=run.qat, layers=list(layers), float_accuracy=ev.float_accuracy)
    return Outcome(res.points, summary, ev)


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """The fewest bits per op and quantity that keep 99% of float accuracy."""
    whats = list(dict.fromkeys(p["labels"]["what"] for p in run.points))
    rows = []
    for layer in run.summary.layers:
        row = [layer]
        for what in whats:
            ok = [p["labels"]["bits"] for p in run.points
                  if p["labels"]["layer"] == layer and p["labels"]["what"] == what and results.relative(p["accuracy"]) >= 0.99]
            row.append(str(min(ok)) if ok else "–")
        rows.append(row)
    return [Table(f"{run.name}: per-op sensitivity", "Fewest bits that keep 99% of float accuracy, one op at a time.", ["op", *whats], rows)]


def _figure(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Relative accuracy against bits, one panel per quantity, one line per op (Judd Fig. 3)."""
    whats = list(dict.fromkeys(p["labels"]["what"] for r in runs for p in r.points))
    if not whats:
        return None
    fig = Figure(figsize=(4.6 * len(whats), 4.4), dpi=110, layout="constrained")
    fig.suptitle("One op at a time (Judd Fig. 3)", fontsize=12)
    for k, what in enumerate(whats):
        ax = fig.add_subplot(1, len(whats), k + 1)
        for r in runs:
            for layer in r.summary.layers:
                pts = sorted((p for p in r.points if p["labels"]["what"] == what and p["labels"]["layer"] == layer), key=lambda p: p["labels"]["bits"])
                ax.plot([p["labels"]["bits"] for p in pts], [results.relative(p["accuracy"]) for p in pts], "-o", ms=3, label=layer)
        ax.set_xlabel(what)
        ax.set_ylabel(RELATIVE)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def figures() -> list[FigureSpec]:
    """Judd's Figure 3."""
    return [FigureSpec("sensitivity", "Relative accuracy when one op's precision varies and the others stay at the reference "
                       "(like Judd et al., Figure 3).", _figure, wide=True)]


# version 2: plans setting one op's weights over a reference with per-op data are stored whole (version 1 kept the weights only)
KIND = RunKind("sensitivity", SensitivityRun, SensitivitySummary, execute, tables, figures, version=2)

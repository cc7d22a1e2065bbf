"""Run kind `greedy`: Judd et al.'s uniform data-width sweep, then the greedy per-op descent under
tolerances (Table 2, Figures 2 and 5), with Judd's published widths and traffic beside ours."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from matplotlib.figure import Figure
from pydantic import Field

from ... import published, search
from ...formats import parse_format
from ...plan import PrecisionPlan
from ...report.format import RELATIVE, FigureSpec, Table, diff, new_figure, num, pct
from ...report.glossary import header
from .base import FormatStr, Outcome, RunConfig, RunContext, RunKind, RunSummary

if TYPE_CHECKING:
    from ...report.results import RunResult, StudyResults
    from ..config import StudyConfig
    from ..stored import StoredExecutor

__all__ = ["GreedyRun", "GreedySummary", "ToleranceRow", "KIND"]


class GreedyRun(RunConfig):
    """Judd's uniform sweep + greedy per-op descent of data widths under tolerances."""

    kind: Literal["greedy"]
    integer_bits: list[int] = Field(default_factory=lambda: list(range(1, 13)))
    fraction_bits: list[int] = Field(default_factory=lambda: list(range(0, 5)))
    tolerances: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default_factory=lambda: [0.01, 0.02, 0.05, 0.10])
    cost: str = "traffic"
    weights: FormatStr = "float32"
    signed: Literal["auto"] | bool = "auto"
    start_within: float = Field(0.001, gt=0, lt=1, description="start from the cheapest uniform width within this fraction of "
                                "float accuracy (Judd: 0.1%)")

    def check(self, study: StudyConfig) -> None:
        """The cost minimized must be measured."""
        if self.cost not in study.evaluation.costs:
            raise ValueError(f"run {self.name!r} minimizes {self.cost!r}, which is not in evaluation.costs {study.evaluation.costs}")


@dataclass(frozen=True)
class ToleranceRow:
    """The best greedy and best uniform plan within one tolerance."""

    tolerance: float
    greedy_widths: list[list[int]] | None
    greedy_cost: float | None
    greedy_accuracy: float | None
    uniform_width: list[int] | None
    uniform_cost: float | None
    uniform_accuracy: float | None


@dataclass(frozen=True)
class GreedySummary(RunSummary):
    """The ops, their signedness, the uniform start, the cost, and one row per tolerance."""

    layers: list[str] = field(default_factory=list)
    signed: bool | Sequence[bool | Sequence[bool]] = True  # per op: the data's, or [data's, second operand's]
    start: list[int] | None = None
    start_within: float = 0.001
    cost: str = "traffic"
    float_accuracy: float = 0.0
    rows: tuple[ToleranceRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GreedySummary:
        base = super().from_dict(d)
        assert isinstance(base, GreedySummary)
        return cls(**{**asdict(base), "rows": tuple(ToleranceRow(**r) for r in d.get("rows", ()))})


def _widths(plan: PrecisionPlan, layers: Sequence[str]) -> list[list[int]]:
    out = []
    for layer in layers:
        f = plan.for_layer(layer).data
        out.append([f.bits - f.frac, f.frac])  # type: ignore[attr-defined]
    return out


def _row(judd: search.JuddResult, tol: float, run: GreedyRun, layers: list[str], fa: float) -> ToleranceRow:
    g = judd.greedy.best.get(f"{tol:.0%}")
    u = judd.best_uniform(tol, fa, run.cost)
    return ToleranceRow(tol, _widths(g.plan, layers) if g else None, g.value(run.cost) if g else None, g.accuracy if g else None,
                        u.labels["uniform"] if u else None, u.value(run.cost) if u else None, u.accuracy if u else None)


def execute(ctx: RunContext, run: GreedyRun, ex: StoredExecutor) -> Outcome:
    """Judd's uniform sweep, start within `start_within` (0.1%), greedy descent; the best plan per tolerance."""
    ev = ctx.evaluator_for(run)
    if run.signed == "auto":
        by_op = {r.name: r.signs() for r in search.layer_ranges(ctx.model, ctx.calibration)}
        signed: bool | list[search.Sign] = [by_op[n] for n in ctx.layers]
    else:
        signed = run.signed
    widths = [(i, f) for i in run.integer_bits for f in run.fraction_bits]
    judd = search.judd_descent(ev, ctx.layers, ev.float_accuracy, widths, run.tolerances, run.cost, run.weights, signed,
                               run.start_within, executor=ex, budget=run.budget())
    rows = tuple(_row(judd, tol, run, ctx.layers, ev.float_accuracy) for tol in run.tolerances)
    points = [search.labelled(p, search="uniform") for p in judd.uniform.points] + [search.labelled(p, search="greedy") for p in judd.greedy.points]
    summary = GreedySummary(complete=judd.uniform.complete and judd.greedy.complete, qat=run.qat, layers=list(ctx.layers), signed=signed,
                            start=list(judd.start) if judd.start else None, start_within=run.start_within, cost=run.cost,
                            float_accuracy=ev.float_accuracy, rows=rows)
    return Outcome(points, summary, ev, _no_start(judd, run, ev.float_accuracy))


def _no_start(judd: search.JuddResult, run: GreedyRun, float_accuracy: float) -> tuple[str, ...]:
    """Why the descent did not run, where the uniform sweep finished without a start."""
    if judd.start is not None or not judd.uniform.complete or not judd.uniform.points:
        return ()
    best = max(judd.uniform.points, key=lambda p: p.accuracy)
    advice = "add wider integer_bits/fraction_bits" + ("" if parse_format(run.weights).is_identity else " or leave the weights float")
    return (f"the greedy descent did not run: no uniform data width came within {run.start_within:.1%} of float accuracy "
            f"({float_accuracy:.2%}; the best, {'%d.%d' % tuple(best.labels['uniform'])} with weights {run.weights}, reached "
            f"{best.accuracy:.2%}); {advice}, or raise start_within",)


def _format_widths(ws: list | None) -> str:
    return "–" if ws is None else "-".join(f"{i}.{f}" for i, f in ws)


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """Judd Table 2 style: the best greedy and uniform plan per tolerance, Judd's beside."""
    net, s = results.model, run.summary
    judd = {tol: (w, tr) for n, tol, w, tr in published.JUDD_TABLE2 if n == net} if compare else {}
    columns = ["tolerance", "greedy I.F per op", f"greedy {header(s.cost)}", "greedy accuracy (%)", "best uniform I.F", f"uniform {header(s.cost)}"]
    if judd:
        columns += ["Judd I.F", "Judd TR", "Δ TR"]
    rows = []
    for r in s.rows:
        tol = f"{r.tolerance:.0%}"
        row = [tol, _format_widths(r.greedy_widths), num(r.greedy_cost), pct(r.greedy_accuracy),
               "–" if r.uniform_width is None else "%d.%d" % tuple(r.uniform_width), num(r.uniform_cost)]
        if judd:
            w, tr = judd.get(tol, (None, None))
            row += ["–" if w is None else _format_widths(w), num(tr, 2), diff(r.greedy_cost, tr, 3)]
        rows.append(row)
    caption = (f"Judd et al.'s greedy per-op search from uniform {s.start[0]}.{s.start[1]} " if s.start
               else f"No uniform start within {s.start_within:.1%} was found; ")
    caption += f"over ops {', '.join(s.layers)}; tolerances are relative to float accuracy."
    if judd:
        caption += f" Judd columns: their Table 2 for {net}."
    return [Table(f"{run.name}: greedy per-op precision", caption, columns, rows)]


def _traffic(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Cost against relative accuracy: uniform widths, greedy mixed plans, best per tolerance (Judd Fig. 5)."""
    fig, ax = new_figure("Cost vs accuracy, uniform and per-op plans (Judd Fig. 5)", f"{runs[0].summary.cost} (ratio vs 32-bit)", RELATIVE)
    for r in runs:
        for kind, marker in (("uniform", "s"), ("greedy", "o")):
            pts = [p for p in r.points if p["labels"].get("search") == kind and r.summary.cost in p["costs"]]
            ax.scatter([p["costs"][r.summary.cost] for p in pts], [results.relative(p["accuracy"]) for p in pts], s=14, marker=marker,
                       alpha=0.7, label=f"{r.name}: {'uniform' if kind == 'uniform' else 'per-op (greedy)'}")
        best = [row for row in r.summary.rows if row.greedy_cost is not None]
        ax.scatter([b.greedy_cost for b in best], [results.relative(b.greedy_accuracy) for b in best], s=60, facecolors="none",
                   edgecolors="k", label="best per tolerance")
    ax.legend(fontsize=7)
    return fig


def _uniform(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Relative accuracy against uniform data integer bits, one line per fraction width (Judd Fig. 2)."""
    fig, ax = new_figure("Uniform data precision (Judd Fig. 2)", "integer bits I (all ops)", RELATIVE)
    for r in runs:
        pts = [p for p in r.points if p["labels"].get("search") == "uniform"]
        for frac in sorted({p["labels"]["uniform"][1] for p in pts}):
            line = sorted((p for p in pts if p["labels"]["uniform"][1] == frac), key=lambda p: p["labels"]["uniform"][0])
            ax.plot([p["labels"]["uniform"][0] for p in line], [results.relative(p["accuracy"]) for p in line], "-o", ms=3,
                    label=f"{r.name}: F = {frac}" if len(runs) > 1 else f"F = {frac}")
    ax.legend(fontsize=7)
    return fig


def figures() -> list[FigureSpec]:
    """Judd's Figures 5 and 2."""
    return [
        FigureSpec("greedy_cost_accuracy", "The greedy run's cost (data traffic ratio by default) against relative accuracy (like "
                   "Judd et al., Figure 5): uniform widths, per-op plans, circled: the best plan per tolerance.", _traffic),
        FigureSpec("uniform_widths", "Relative accuracy when every op's data uses the same fixed-point width I.F, against I, one "
                   "line per F (like Judd et al., Figure 2); weights as in the greedy run.", _uniform),
    ]


# version 2: a weight-free product's second operand keeps its own sign (v1 gave attention's V the unsigned
# format of P, clipping its negatives)
KIND = RunKind("greedy", GreedyRun, GreedySummary, execute, tables, figures, version=2)

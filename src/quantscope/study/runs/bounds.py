"""Run kind `bounds`: Sakr et al.'s Theorem 1 and 2 bounds at B_W = B_A and at the precision
rule's offset, with the simulated mismatch of the plan each pair describes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from matplotlib.figure import Figure
from pydantic import Field, model_validator

from ... import search
from ...plan import PrecisionPlan
from ...report.format import FigureSpec, Table, new_figure, num, pct
from ...search.evaluate import Point
from ...store import content_key
from .base import Outcome, RunConfig, RunContext, RunKind, RunSummary

if TYPE_CHECKING:
    from ...report.results import RunResult, StudyResults
    from ..stored import StoredExecutor

__all__ = ["BoundsRun", "BoundsSummary", "BoundRow", "KIND"]


class BoundsRun(RunConfig):
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


@dataclass(frozen=True)
class BoundRow:
    """One (B_A, B_W) pair: both theorems, and the simulation where it ran."""

    b_a: int
    b_w: int
    offset: int
    theorem1: float
    theorem2: float
    simulated_mismatch: float | None = None
    simulated_error: float | None = None


@dataclass(frozen=True)
class BoundsSummary(RunSummary):
    """E_A, E_W, the rule's offset, the float error, and one row per precision pair."""

    e_a: float = 0.0
    e_w: float = 0.0
    rule_offset: int = 0
    float_error: float = 0.0
    estimation_examples: int = 0
    rows: tuple[BoundRow, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BoundsSummary:
        base = super().from_dict(d)
        assert isinstance(base, BoundsSummary)
        return cls(**{**asdict(base), "rows": tuple(BoundRow(**r) for r in d.get("rows", ()))})


def _estimate(ctx: RunContext, run: BoundsRun) -> dict[str, Any]:
    """The bounds of every pair, from the store or computed once (they depend only on the float model)."""
    ev = ctx.evaluator
    key = content_key("sakr-bounds", ev.fingerprint, run.bits, run.estimation)
    stored = ctx.store.get_artifact(key)
    if stored is None:
        x, y = ctx.eval_set.tensors(limit=run.estimation)
        bounds, pairs, offset = search.sakr_sweep(ctx.model, x, y, run.bits)
        stored = {"e_a": bounds.e_a, "e_w": bounds.e_w, "offset": offset, "examples": len(x), "pairs": [list(p) for p in pairs],
                  "theorem1": [bounds.theorem1(*p) for p in pairs], "theorem2": [bounds.theorem2[p] for p in pairs],
                  "plans": [bounds.plan(*p).to_dict() for p in pairs]}
        ctx.store.put_artifact(key, stored)
    return stored


def execute(ctx: RunContext, run: BoundsRun, ex: StoredExecutor) -> Outcome:
    """Both theorems at every pair; the simulated mismatch of each pair's plan."""
    ev, stored = ctx.evaluator_for(run), _estimate(ctx, run)
    pairs = [tuple(p) for p in stored["pairs"]]
    rows = [BoundRow(a, w, w - a, t1, t2) for (a, w), t1, t2 in zip(pairs, stored["theorem1"], stored["theorem2"])]
    points: list[Point] = []
    complete = True
    if run.simulate:
        res = search.sweep(ev, [PrecisionPlan.from_dict(p) for p in stored["plans"]], ex, run.budget())
        points, complete = [search.labelled(p, b_a=a, b_w=w) for p, (a, w) in zip(res.points, pairs)], res.complete
        rows = [BoundRow(**{**asdict(r), "simulated_mismatch": p.mismatch, "simulated_error": 1 - p.accuracy})
                for r, p in zip(rows, points)] + rows[len(points):]
    summary = BoundsSummary(complete=complete, e_a=stored["e_a"], e_w=stored["e_w"], rule_offset=stored["offset"],
                            float_error=1 - ev.float_accuracy, estimation_examples=stored.get("examples", run.estimation), rows=tuple(rows))
    return Outcome(points, summary, ev)


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """Both bounds, the simulated mismatch, whether each bound holds, the test error bound."""
    s = run.summary
    out = []
    for r in s.rows:
        sim = r.simulated_mismatch
        holds = "–" if sim is None else ("yes" if r.theorem1 >= sim else "no") + " / " + ("yes" if r.theorem2 >= sim else "no")
        out.append([str(r.b_a), str(r.b_w), num(r.theorem1), num(r.theorem2), pct(sim), holds, pct(s.float_error + min(r.theorem2, 1.0))])
    caption = (f"E_A = {s.e_a:.4g}, E_W = {s.e_w:.4g} from {s.estimation_examples} examples; the precision rule gives "
               f"B_W − B_A = {s.rule_offset}. Bounds hold when they are at least the simulated mismatch.")
    columns = ["B_A", "B_W", "Theorem 1", "Theorem 2", "simulated mismatch (%)", "bound holds (T1 / T2)", "test error bound (%)"]
    return [Table(f"{run.name}: Sakr bounds", caption, columns, out)]


def _figure(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Both bounds and the simulated mismatch against B_A (log y), per offset."""
    fig, ax = new_figure("Mismatch bounds vs precision (Sakr)", "activation bits B_A", "mismatch probability (log scale)")
    ax.set_yscale("log")
    for r in runs:
        for offset in sorted({row.offset for row in r.summary.rows}):
            rows = sorted((row for row in r.summary.rows if row.offset == offset), key=lambda row: row.b_a)
            tag = "B_W = B_A" if offset == 0 else f"B_W = B_A {offset:+d} (rule)"
            b = [row.b_a for row in rows]
            line = ax.plot(b, [row.theorem1 for row in rows], "--", label=f"Theorem 1, {tag}")[0]
            ax.plot(b, [row.theorem2 for row in rows], "-", color=line.get_color(), label=f"Theorem 2, {tag}")
            sim = [row for row in rows if row.simulated_mismatch is not None]
            if sim:
                ax.plot([row.b_a for row in sim], [max(row.simulated_mismatch, 1e-6) for row in sim], "o", color=line.get_color(),
                        label=f"simulated, {tag}")
    ax.set_ylim(1e-6, 2)
    ax.legend(fontsize=7)
    return fig


def figures() -> list[FigureSpec]:
    """Sakr's bound figure."""
    return [FigureSpec("bounds_vs_bits", "Sakr et al.'s Theorem 1 and Theorem 2 bounds on the mismatch probability against activation "
                       "bits, with the simulated mismatch of the fixed-point network (a zero mismatch is drawn at 1e-6).", _figure)]


KIND = RunKind("bounds", BoundsRun, BoundsSummary, execute, tables, figures)

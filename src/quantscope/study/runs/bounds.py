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
    from ..config import StudyConfig
    from ..stored import StoredExecutor

__all__ = ["BoundsRun", "BoundsSummary", "BoundRow", "KIND"]


class BoundsRun(RunConfig):
    """Sakr's bounds at B_W = B_A and at the rule's offset, with simulated mismatch."""

    kind: Literal["bounds"]
    bits: list[Annotated[int, Field(ge=2, le=24)]] = Field(default_factory=lambda: list(range(2, 17)))
    estimation: int = Field(500, ge=10, description="examples that estimate E_A and E_W")
    estimation_split: Literal["eval", "val", "test_rest", "train"] = Field(
        "eval", description="where the estimation examples come from: the evaluated examples themselves (Sakr's bounds are "
        "expectations over the data), or another split; `val` with `eval_split: test_rest` keeps both held out and disjoint "
        "(the training split's larger margins shrink E_A and E_W)")
    ranges: Literal["max", "paper"] = Field(
        "max", description="range convention: each operand's power-of-two range holding its maximum, or Sakr's [-1, 1) / [0, 2)")
    simulate: bool = True
    targets: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [0.01], description="mismatch targets of the design options: the smallest pair whose bound is at "
        "most each target, at B_W = B_A and at the rule's offset, by each theorem (Sakr's Table 1)")

    @model_validator(mode="after")
    def _no_qat(self) -> BoundsRun:
        if self.qat:
            raise ValueError("bounds describe the float network's weights; qat does not apply")
        return self

    def check(self, study: StudyConfig) -> None:
        """The estimation split is the evaluated one, or disjoint from it."""
        ev, est = study.dataset.eval_split, self.estimation_split
        if est != "eval" and (est == ev or {est, ev} in ({"val", "test"}, {"test_rest", "test"})):
            raise ValueError(f"run {self.name!r}: estimation_split {est!r} overlaps the evaluated split {ev!r}; use 'eval' to "
                             "estimate on the evaluated examples, or a disjoint split (val with eval_split test_rest)")


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
    noise_mismatch: float | None = None


@dataclass(frozen=True)
class BoundsSummary(RunSummary):
    """E_A, E_W, the rule's offset, the float error, the design options' targets, and one row per precision pair."""

    e_a: float = 0.0
    e_w: float = 0.0
    rule_offset: int = 0
    float_error: float = 0.0
    estimation_examples: int = 0
    estimation_split: str = "eval"
    ranges: str = "max"
    targets: tuple[float, ...] = (0.01,)
    rows: tuple[BoundRow, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BoundsSummary:
        base = super().from_dict(d)
        assert isinstance(base, BoundsSummary)
        return cls(**{**asdict(base), "targets": tuple(d.get("targets", (0.01,))), "rows": tuple(BoundRow(**r) for r in d.get("rows", ()))})


def _estimate(ctx: RunContext, run: BoundsRun) -> dict[str, Any]:
    """The bounds of every pair, from the store or computed once (they depend only on the float model)."""
    ev = ctx.evaluator
    key = content_key("sakr-bounds", ev.fingerprint, run.bits, run.estimation, run.estimation_split, run.ranges)
    stored = ctx.store.get_artifact(key)
    if stored is None:
        x, y = _estimation_set(ctx, run)
        bounds, pairs, offset = search.sakr_sweep(ctx.model, x, y, run.bits, convention=run.ranges)
        stored = {"e_a": bounds.e_a, "e_w": bounds.e_w, "offset": offset, "examples": len(x), "pairs": [list(p) for p in pairs],
                  "theorem1": [bounds.theorem1(*p) for p in pairs], "theorem2": [bounds.theorem2[p] for p in pairs],
                  "plans": [bounds.plan(*p).to_dict() for p in pairs]}
        ctx.store.put_artifact(key, stored)
    return stored


def _estimation_set(ctx: RunContext, run: BoundsRun) -> tuple:
    source = ctx.eval_set if run.estimation_split == "eval" else ctx.split(run.estimation_split)
    return source.tensors(limit=run.estimation)[:2]


#: evaluation examples and noise draws of the noise-model diagnostic of a failed bound
_NOISE_EXAMPLES, _NOISE_DRAWS = 1000, 3


def _noise_check(ctx: RunContext, run: BoundsRun, rows: list[BoundRow]) -> list[BoundRow]:
    """Where a bound is below the simulated mismatch, the mismatch of the theorems' own model (the
    network with independent uniform noise instead of rounding, `search.noise_mismatch`): a bound
    that holds for it failed because rounding there is not that noise."""
    failed = [r for r in rows if r.simulated_mismatch is not None and min(r.theorem1, r.theorem2) < r.simulated_mismatch]
    if not failed:
        return rows
    ranges = search.layer_ranges(ctx.model, _estimation_set(ctx, run)[0], run.ranges)
    x = ctx.eval_set.tensors(limit=_NOISE_EXAMPLES)[0]
    noise = {(r.b_a, r.b_w): search.noise_mismatch(ctx.model, x, r.b_a, r.b_w, ranges, draws=_NOISE_DRAWS) for r in failed}
    return [BoundRow(**{**asdict(r), "noise_mismatch": noise.get((r.b_a, r.b_w))}) for r in rows]


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
        rows = _noise_check(ctx, run, rows)
    summary = BoundsSummary(complete=complete, e_a=stored["e_a"], e_w=stored["e_w"], rule_offset=stored["offset"],
                            float_error=1 - ev.float_accuracy, estimation_examples=stored.get("examples", run.estimation),
                            estimation_split=run.estimation_split, ranges=run.ranges, targets=tuple(run.targets), rows=tuple(rows))
    return Outcome(points, summary, ev)


def tables(results: StudyResults, run: RunResult, compare: bool) -> list[Table]:
    """Both bounds, the simulated mismatch, whether each bound holds, the test error bound."""
    s = run.summary
    out = []
    for r in s.rows:
        sim = r.simulated_mismatch
        holds = "–" if sim is None else f"{_verdict(r.theorem1, sim, r.noise_mismatch)} / {_verdict(r.theorem2, sim, r.noise_mismatch)}"
        out.append([str(r.b_a), str(r.b_w), num(r.theorem1), num(r.theorem2), pct(sim), pct(r.noise_mismatch), holds,
                    pct(s.float_error + min(r.theorem2, 1.0))])
    split = "evaluated examples" if s.estimation_split == "eval" else f"{s.estimation_split} examples (disjoint from the evaluated ones)"
    convention = "Sakr's ranges [-1, 1) and [0, 2)" if s.ranges == "paper" else "power-of-two ranges holding each operand's maximum"
    caption = (f"E_A = {s.e_a:.4g}, E_W = {s.e_w:.4g} from {s.estimation_examples} {split}, {convention}; the precision rule gives "
               f"B_W − B_A = {s.rule_offset}. Bounds hold when they are at least the simulated mismatch. Where one does not, the "
               "network with independent uniform noise in place of rounding (the theorems' own model) is simulated too: a bound "
               "that holds for it is marked outside the theorems' assumptions (rounding there is not that noise).")
    columns = ["B_A", "B_W", "Theorem 1", "Theorem 2", "simulated mismatch (%)", "noise-model mismatch (%)", "bound holds (T1 / T2)",
               "test error bound (%)"]
    return [Table(f"{run.name}: Sakr bounds", caption, columns, out), _design_options(run)]


def _design_options(run: RunResult) -> Table:
    """Sakr's Table 1: for each target, the smallest pair whose bound meets it at B_W = B_A and at
    the rule's offset, by each theorem, with its simulated mismatch, test error and costs."""
    s = run.summary
    costs = {(p["labels"]["b_a"], p["labels"]["b_w"]): p.get("costs", {}) for p in run.points}
    offsets = [0] if s.rule_offset == 0 else [0, s.rule_offset]
    out = []
    for target in s.targets:
        for offset in offsets:
            for theorem in (1, 2):
                rows = sorted((r for r in s.rows if r.offset == offset and getattr(r, f"theorem{theorem}") <= target), key=lambda r: r.b_a)
                tag = f"p_m ≤ {100 * target:g}% by Theorem {theorem}, " + ("B_W = B_A" if offset == 0 else f"B_W = B_A {offset:+d} (rule)")
                if not rows:
                    out.append([tag, "–", "–", "no pair in the grid meets it", "–", "–", "–", "–"])
                    continue
                r = rows[0]
                c = costs.get((r.b_a, r.b_w), {})
                fa, rep = c.get("full_adders"), c.get("representational_bits")
                out.append([tag, str(r.b_a), str(r.b_w), num(getattr(r, f"theorem{theorem}")), pct(r.simulated_mismatch), pct(r.simulated_error),
                            num(None if fa is None else fa / 1e6), num(None if rep is None else rep / 1e6)])
    caption = ("Design options as in Sakr et al.'s Table 1: the smallest precision pair of the grid whose bound meets each mismatch "
               "target, with its simulated mismatch and test error (measured on the evaluated examples) and its computational and "
               "representational cost per example (activation bits included); a cost the study did not compute shows –.")
    columns = ["design option", "B_A", "B_W", "bound", "simulated mismatch (%)", "test error (%)", "full adders (10^6)",
               "representational cost (10^6 bits)"]
    return Table(f"{run.name}: design options", caption, columns, out)


def _verdict(bound: float, simulated: float, noise: float | None) -> str:
    if bound >= simulated:
        return "yes"
    return "outside the theorems' assumptions" if noise is not None and bound >= noise else "no"


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

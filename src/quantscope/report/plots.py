"""The report's figures: the study-wide ones here (every point of every run), then each run kind's
own (`study.runs`). Each returns a matplotlib Figure, or None when the study has no data for it."""

from __future__ import annotations

from matplotlib.figure import Figure

from ..search.evaluate import Point
from ..search.frontier import pareto
from .format import RELATIVE, FigureSpec, new_figure, scatter_runs
from .results import RunResult, StudyResults

__all__ = ["STUDY_FIGURES", "figures"]


def _with(runs: list[RunResult], cost: str) -> list[tuple[str, Point]]:
    return [(r.name, Point.from_dict(p)) for r in runs for p in r.points if cost in p["costs"]]


def energy_pareto(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Accuracy against accelerator energy per image (log x) with the Pareto frontier (Hashemi Fig. 4)."""
    rows = _with(runs, "energy_uj")
    if not rows:
        return None
    fig, ax = new_figure("Accuracy vs energy per image (Hashemi Fig. 4)", "energy per image (uJ, log scale)", "accuracy")
    ax.set_xscale("log")
    scatter_runs(ax, rows, lambda p: p.costs["energy_uj"], lambda p: p.accuracy)
    front = sorted(pareto([p for _, p in rows], minimize=("energy_uj",), maximize=("accuracy",)), key=lambda p: p.costs["energy_uj"])
    ax.plot([p.costs["energy_uj"] for p in front], [p.accuracy for p in front], "k-", lw=1.2, label="Pareto frontier")
    ax.legend(fontsize=7)
    return fig


def speedup_accuracy(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Normalized accuracy against MAC speedup at fixed area over float32 (Hill Fig. 6)."""
    rows = _with(runs, "mac_speedup")
    if not rows:
        return None
    fig, ax = new_figure("Accuracy vs MAC speedup at fixed area (Hill Fig. 6)", "speedup over float32 MAC (log scale)", RELATIVE)
    ax.set_xscale("log")
    scatter_runs(ax, rows, lambda p: p.costs["mac_speedup"], lambda p: results.relative(p.accuracy))
    front = sorted(pareto([p for _, p in rows], minimize=(), maximize=("mac_speedup", "accuracy")), key=lambda p: p.costs["mac_speedup"])
    ax.plot([p.costs["mac_speedup"] for p in front], [results.relative(p.accuracy) for p in front], "k-", lw=1.2, label="Pareto frontier")
    ax.axhline(0.99, color="grey", ls=":", lw=1, label="99% of float")
    ax.legend(fontsize=7)
    return fig


def traffic_accuracy(results: StudyResults, runs: list[RunResult]) -> Figure | None:
    """Data traffic ratio against relative accuracy, every point (Judd Fig. 5's axes)."""
    rows = _with(runs, "traffic")
    if not rows:
        return None
    fig, ax = new_figure("Traffic vs accuracy (Judd Fig. 5)", "data traffic ratio vs 32-bit", RELATIVE)
    scatter_runs(ax, rows, lambda p: p.costs["traffic"], lambda p: results.relative(p.accuracy))
    ax.legend(fontsize=7)
    return fig


#: figures over every point of the study
STUDY_FIGURES = [
    FigureSpec("energy_pareto", "Accuracy against the accelerator's energy per image, every point of the study, with the Pareto "
               "frontier (like Hashemi et al., Figure 4).", energy_pareto),
    FigureSpec("speedup_accuracy", "Accuracy relative to float against the MAC speedup at fixed area over float32 (like Hill et al., "
               "Figure 6); power-of-two and binary weights count at their data format's fixed-point unit (conservative); plans with "
               "no MAC model are left out.", speedup_accuracy),
    FigureSpec("traffic_accuracy", "Data traffic ratio against relative accuracy, every point of the study (the axes of Judd et "
               "al., Figure 5).", traffic_accuracy),
]


def figures(results: StudyResults) -> list[tuple[FigureSpec, Figure]]:
    """Every figure the study has data for: the study-wide ones, then each run kind's."""
    from ..study.runs import RUN_KINDS

    out = []
    for spec in STUDY_FIGURES:
        fig = spec.draw(results, results.runs)
        if fig is not None:
            out.append((spec, fig))
    for kind in dict.fromkeys(r.kind for r in results.runs):
        runs = [r for r in results.runs if r.kind == kind]
        for spec in RUN_KINDS[kind].figures():
            fig = spec.draw(results, runs)
            if fig is not None:
                out.append((spec, fig))
    return out

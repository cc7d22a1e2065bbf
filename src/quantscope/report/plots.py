"""The report's figures, after the papers': each returns a matplotlib Figure, or None when the
study has no data for it (no pyplot state: figures are plain objects)."""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.figure import Figure

from ..search.evaluate import Point
from ..search.strategies import pareto
from .results import StudyResults

_RELATIVE = "accuracy / float accuracy"


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, object]:
    fig = Figure(figsize=(6.4, 4.2), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _with(results: StudyResults, cost: str) -> list[tuple[str, Point]]:
    return [(r.name, Point.from_dict(p)) for r in results.runs for p in r.points if cost in p["costs"]]


def _scatter_runs(ax, rows: list[tuple[str, Point]], x: Callable[[Point], float], y: Callable[[Point], float]) -> None:
    for run in dict.fromkeys(name for name, _ in rows):
        pts = [p for name, p in rows if name == run]
        ax.scatter([x(p) for p in pts], [y(p) for p in pts], s=16, alpha=0.75, label=run)


def energy_pareto(results: StudyResults) -> Figure | None:
    """Accuracy against accelerator energy per image (log x) with the Pareto frontier (Hashemi Fig. 4)."""
    rows = _with(results, "energy_uj")
    if not rows:
        return None
    fig, ax = _figure("Accuracy vs energy per image (Hashemi Fig. 4)", "energy per image (uJ, log scale)", "accuracy")
    ax.set_xscale("log")
    _scatter_runs(ax, rows, lambda p: p.costs["energy_uj"], lambda p: p.accuracy)
    front = sorted(pareto([p for _, p in rows], minimize=("energy_uj",), maximize=("accuracy",)), key=lambda p: p.costs["energy_uj"])
    ax.plot([p.costs["energy_uj"] for p in front], [p.accuracy for p in front], "k-", lw=1.2, label="Pareto frontier")
    ax.legend(fontsize=7)
    return fig


def speedup_accuracy(results: StudyResults) -> Figure | None:
    """Normalized accuracy against MAC speedup at fixed area over float32 (Hill Fig. 6)."""
    rows = _with(results, "mac_speedup")
    if not rows:
        return None
    fig, ax = _figure("Accuracy vs MAC speedup at fixed area (Hill Fig. 6)", "speedup over float32 MAC (log scale)", _RELATIVE)
    ax.set_xscale("log")
    _scatter_runs(ax, rows, lambda p: p.costs["mac_speedup"], lambda p: results.relative(p.accuracy))
    front = sorted(pareto([p for _, p in rows], minimize=(), maximize=("mac_speedup", "accuracy")), key=lambda p: p.costs["mac_speedup"])
    ax.plot([p.costs["mac_speedup"] for p in front], [results.relative(p.accuracy) for p in front], "k-", lw=1.2, label="Pareto frontier")
    ax.axhline(0.99, color="grey", ls=":", lw=1, label="99% of float")
    ax.legend(fontsize=7)
    return fig


def traffic_accuracy(results: StudyResults) -> Figure | None:
    """Data traffic ratio against normalized accuracy: uniform vs greedy mixed plans (Judd Fig. 5)."""
    greedy = [r for r in results.runs if r.kind == "greedy"]
    fig, ax = _figure("Traffic vs accuracy (Judd Fig. 5)", "data traffic ratio vs 32-bit", _RELATIVE)
    if greedy:
        for r in greedy:
            for search, marker in (("uniform", "s"), ("greedy", "o")):
                pts = [p for p in r.points if p["labels"].get("search") == search]
                ax.scatter([p["costs"]["traffic"] for p in pts], [results.relative(p["accuracy"]) for p in pts], s=14, marker=marker, alpha=0.7,
                           label=f"{r.name}: {'uniform' if search == 'uniform' else 'mixed (greedy)'}")
            best = [row for row in r.summary["rows"] if row["greedy_cost"] is not None]
            ax.scatter([b["greedy_cost"] for b in best], [results.relative(b["greedy_accuracy"]) for b in best], s=60, facecolors="none", edgecolors="k",
                       label="best per tolerance")
    else:
        rows = _with(results, "traffic")
        if not rows:
            return None
        _scatter_runs(ax, rows, lambda p: p.costs["traffic"], lambda p: results.relative(p.accuracy))
    ax.legend(fontsize=7)
    return fig


def uniform_widths(results: StudyResults) -> Figure | None:
    """Relative accuracy against uniform data integer bits, one line per fraction width (Judd Fig. 2)."""
    greedy = [r for r in results.runs if r.kind == "greedy"]
    if not greedy:
        return None
    fig, ax = _figure("Uniform data precision (Judd Fig. 2)", "integer bits I (all layers)", _RELATIVE)
    for r in greedy:
        pts = [p for p in r.points if p["labels"].get("search") == "uniform"]
        for frac in sorted({p["labels"]["uniform"][1] for p in pts}):
            line = sorted((p for p in pts if p["labels"]["uniform"][1] == frac), key=lambda p: p["labels"]["uniform"][0])
            ax.plot([p["labels"]["uniform"][0] for p in line], [results.relative(p["accuracy"]) for p in line], "-o", ms=3,
                    label=f"{r.name}: F = {frac}" if len(greedy) > 1 else f"F = {frac}")
    ax.legend(fontsize=7)
    return fig


def bounds_vs_bits(results: StudyResults) -> Figure | None:
    """Sakr's Theorem 1 and 2 bounds and the simulated mismatch against B_A (log y)."""
    runs = [r for r in results.runs if r.kind == "bounds"]
    if not runs:
        return None
    fig, ax = _figure("Mismatch bounds vs precision (Sakr)", "activation bits B_A", "mismatch probability (log scale)")
    ax.set_yscale("log")
    for r in runs:
        for offset in sorted({row["offset"] for row in r.summary["rows"]}):
            rows = sorted((row for row in r.summary["rows"] if row["offset"] == offset), key=lambda row: row["b_a"])
            tag = "B_W = B_A" if offset == 0 else f"B_W = B_A {offset:+d} (rule)"
            b = [row["b_a"] for row in rows]
            line = ax.plot(b, [row["theorem1"] for row in rows], "--", label=f"Theorem 1, {tag}")[0]
            ax.plot(b, [row["theorem2"] for row in rows], "-", color=line.get_color(), label=f"Theorem 2, {tag}")
            sim = [row for row in rows if "simulated_mismatch" in row]
            if sim:
                ax.plot([row["b_a"] for row in sim], [max(row["simulated_mismatch"], 1e-6) for row in sim], "o", color=line.get_color(),
                        label=f"simulated, {tag}")
    ax.set_ylim(1e-6, 2)
    ax.legend(fontsize=7)
    return fig


def sensitivity(results: StudyResults) -> Figure | None:
    """Per-layer sensitivity: relative accuracy against bits, one panel per quantity (Judd Fig. 3)."""
    runs = [r for r in results.runs if r.kind == "sensitivity"]
    if not runs:
        return None
    whats = list(dict.fromkeys(p["labels"]["what"] for r in runs for p in r.points))
    fig = Figure(figsize=(4.2 * len(whats), 3.8), dpi=110, layout="constrained")
    fig.suptitle("One layer at a time (Judd Fig. 3)", fontsize=11)
    for k, what in enumerate(whats):
        ax = fig.add_subplot(1, len(whats), k + 1)
        for r in runs:
            for layer in r.summary["layers"]:
                pts = sorted((p for p in r.points if p["labels"]["what"] == what and p["labels"]["layer"] == layer), key=lambda p: p["labels"]["bits"])
                ax.plot([p["labels"]["bits"] for p in pts], [results.relative(p["accuracy"]) for p in pts], "-o", ms=3, label=layer)
        ax.set_xlabel(what)
        ax.set_ylabel(_RELATIVE)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


#: the report's figures: file stem -> (caption, builder)
FIGURES: dict[str, tuple[str, Callable[[StudyResults], Figure | None]]] = {
    "energy_pareto": ("Accuracy against the accelerator's energy per image, every point of the study, with the Pareto frontier "
                      "(like Hashemi et al., Figure 4).", energy_pareto),
    "speedup_accuracy": ("Accuracy relative to float against the MAC speedup at fixed area over float32 (like Hill et al., Figure 6); "
                         "power-of-two and binary weights count at their data format's fixed-point unit (conservative); plans with no MAC model are left out.", speedup_accuracy),
    "traffic_accuracy": ("Data traffic ratio against relative accuracy (like Judd et al., Figure 5): with a greedy run, its uniform "
                         "widths and mixed per-layer plans, circled: the best plan per tolerance; otherwise every point.", traffic_accuracy),
    "uniform_widths": ("Relative accuracy when every layer's data uses the same fixed-point width I.F, against I, one line per F "
                       "(like Judd et al., Figure 2); weights as in the greedy run.", uniform_widths),
    "bounds_vs_bits": ("Sakr et al.'s Theorem 1 and Theorem 2 bounds on the mismatch probability against activation bits, with the "
                       "simulated mismatch of the fixed-point network (a zero mismatch is drawn at 1e-6).", bounds_vs_bits),
    "sensitivity": ("Relative accuracy when one layer's precision varies and the others stay at the reference "
                    "(like Judd et al., Figure 3).", sensitivity),
}

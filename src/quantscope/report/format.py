"""What the report's tables and figures are made of: titled tables of formatted cells, number
formatting, and the figure helpers every run kind draws with (no pyplot state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from ..plan import PrecisionPlan
from ..search.evaluate import Point

__all__ = ["Table", "FigureSpec", "pct", "num", "diff", "plan_formats", "new_figure", "scatter_runs", "RELATIVE"]

RELATIVE = "accuracy / float accuracy"


@dataclass
class Table:
    """A titled table of already-formatted cells."""

    title: str
    caption: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class FigureSpec:
    """A report figure: its file stem, caption, and `draw(results, runs)` drawing it from those
    runs (None: nothing to draw); `wide` figures take the page's full width."""

    stem: str
    caption: str
    draw: Callable[..., Figure | None]
    wide: bool = False


def pct(v: float | None) -> str:
    """A fraction as a percentage with two decimals ("–" for none)."""
    return "–" if v is None else f"{100 * v:.2f}"


def num(v: float | None, digits: int = 3) -> str:
    """A number with `digits` decimals, or significant digits when tiny or huge."""
    if v is None:
        return "–"
    return f"{v:.{digits}g}" if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4) else f"{v:.{digits}f}"


def diff(ours: float | None, theirs: float | None, digits: int = 2) -> str:
    """ours - theirs with a sign ("–" when either is missing)."""
    return "–" if ours is None or theirs is None else f"{ours - theirs:+.{digits}f}"


def plan_formats(record: dict[str, Any]) -> tuple[str, str]:
    """(weights, data) format strings of a stored point's default precision."""
    d = PrecisionPlan.from_dict(record["plan"]).default
    return str(d.weights), str(d.data)


def new_figure(title: str, xlabel: str, ylabel: str, width: float = 6.4) -> tuple[Figure, Any]:
    """A figure with one titled, labelled, gridded axis."""
    fig = Figure(figsize=(width, 4.2), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def scatter_runs(ax: Any, rows: list[tuple[str, Point]], x: Callable[[Point], float], y: Callable[[Point], float]) -> None:
    """One scatter series per run name of (run, point) rows."""
    for run in dict.fromkeys(name for name, _ in rows):
        pts = [p for name, p in rows if name == run]
        ax.scatter([x(p) for p in pts], [y(p) for p in pts], s=16, alpha=0.75, label=run)

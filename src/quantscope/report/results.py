"""A finished study's results read back from its folder: settings, runs, points with labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results import study_info
from ..store import STORE_FILE, Store

__all__ = ["RunResult", "StudyResults", "load_results"]


@dataclass
class RunResult:
    """One run: its kind, typed summary (the kind's `RunSummary`), and points (records with `labels`)."""

    name: str
    kind: str
    summary: Any
    points: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StudyResults:
    """Everything a report needs from a study folder."""

    folder: Path
    info: dict[str, Any]
    runs: list[RunResult]

    @property
    def name(self) -> str:
        return self.info["config"]["name"]

    @property
    def config(self) -> dict[str, Any]:
        return self.info["config"]

    @property
    def model(self) -> str | None:
        return self.config["model"].get("name")

    @property
    def float_accuracy(self) -> float:
        return self.info["float_accuracy"]

    def relative(self, accuracy: float) -> float:
        """Accuracy over float accuracy (NaN when the float model has none, so nothing is drawn)."""
        fa = self.float_accuracy
        return accuracy / fa if fa > 0 else float("nan")

    def points(self) -> list[dict[str, Any]]:
        """Every point of every run (a point shared by runs appears once per run)."""
        return [p for r in self.runs for p in r.points]


def load_results(folder: str | Path) -> StudyResults:
    """Read `study.json` and the result store of a study folder written by `run_study`."""
    folder = Path(folder)
    info = study_info(folder)
    name = info["config"]["name"]
    from ..study.runs import RUN_KINDS

    with Store(folder / STORE_FILE, read_only=True) as store:
        members = store.members(name)
        stored = store.runs(name)
    if not stored:
        raise ValueError(f"{folder}: study {name!r} has no finished run yet, so there is nothing to report; "
                         f"continue it with `quantscope study CONFIG --out {folder} --resume`")
    unknown = sorted({kind for _, kind, _ in stored if kind not in RUN_KINDS})
    if unknown:
        raise ValueError(f"{folder} holds runs of kind(s) {', '.join(unknown)}, which are not registered here; known: {', '.join(RUN_KINDS)}")
    runs = [RunResult(run, kind, RUN_KINDS[kind].summary.from_dict(summary), [m for m in members if m["run"] == run])
            for run, kind, summary in stored]
    order = {r["name"]: i for i, r in enumerate(info["config"]["runs"])}
    runs.sort(key=lambda r: order.get(r.name, len(order)))
    return StudyResults(folder, info, runs)

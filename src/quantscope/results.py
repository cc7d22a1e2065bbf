"""A study folder's stored results, for people and programs: what it holds (study, runs, points)
and its points as flat rows, a pandas frame, or CSV, JSON and Parquet files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import atomic_path, write_atomic
from .store import STORE_FILE, Store, csv_text, flat

__all__ = ["EXPORT_SUFFIXES", "study_info", "contents", "rows", "load", "export"]

EXPORT_SUFFIXES = (".csv", ".json", ".parquet")


def study_info(folder: str | Path) -> dict[str, Any]:
    """A study folder's `study.json` (what the runner wrote: config, float accuracy, ops); an
    error naming the folder when it is not a study folder or the file is not quantscope's."""
    info = Path(folder) / "study.json"
    if not info.is_file():
        raise FileNotFoundError(f"{folder} is not a study folder (no study.json); run `quantscope study CONFIG --out {folder}` first")
    try:
        content = json.loads(info.read_text())
        content["config"]["name"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{info} is not a study description written by quantscope ({type(err).__name__}: {err})") from None
    return content


def _study(folder: Path) -> str:
    return study_info(folder)["config"]["name"]


def contents(folder: str | Path) -> dict[str, Any]:
    """The study a folder holds, its finished runs (kind, points, seconds) and all stored points."""
    folder = Path(folder)
    name = _study(folder)
    with Store(folder / STORE_FILE, read_only=True) as store:
        runs = [{"run": run, "kind": kind, "points": len(store.members(name, run)), "complete": summary.get("complete", True),
                 "seconds": summary.get("seconds")} for run, kind, summary in store.runs(name)]
        return {"study": name, "folder": str(folder), "runs": runs, "points_stored": len(store)}


def _records(folder: Path, run: str | None) -> list[dict[str, Any]]:
    name = _study(folder)
    with Store(folder / STORE_FILE, read_only=True) as store:
        known = [r for r, _, _ in store.runs(name)]
        if run is not None and run not in known:
            raise ValueError(f"study {name!r} has no finished run {run!r}; finished runs: {', '.join(known) or '(none)'}")
        return store.members(name, run)


def rows(folder: str | Path, run: str | None = None) -> list[dict[str, Any]]:
    """The study's points (one run's if `run`) as flat rows: one per point and run, with
    `costs.NAME` and `labels.NAME` columns."""
    return [flat(r) for r in _records(Path(folder), run)]


def load(folder: str | Path, run: str | None = None) -> Any:
    """The study's points as a pandas DataFrame (pandas is an extra: pip install 'quantscope[tables]')."""
    try:
        import pandas as pd
    except ImportError:
        raise ValueError("quantscope.results.load needs pandas: pip install 'quantscope[tables]'") from None
    return pd.DataFrame(rows(folder, run))


def export(folder: str | Path, path: str | Path, run: str | None = None) -> int:
    """Write the study's points to `path` (.csv, .json or .parquet; Parquet needs pyarrow),
    atomically; returns how many points were written."""
    path = Path(path)
    if path.suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"export to a file ending in {', '.join(EXPORT_SUFFIXES)}; got {str(path)!r}")
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401 - pandas writes Parquet through it
        except ImportError:
            raise ValueError("Parquet export needs pyarrow: pip install 'quantscope[tables]'") from None
        frame = load(folder, run)
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
        return len(frame)
    records = _records(Path(folder), run)
    write_atomic(path, json.dumps(records, indent=1) + "\n" if path.suffix == ".json" else csv_text(records))
    return len(records)

"""Helpers shared by the experiment scripts: trained checkpoints, data, output folder, plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from quantscope import data, results  # noqa: E402
from quantscope.train import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
DATA_DIR = ROOT.parent / "shared" / "datasets"
CHECKPOINTS = {"lenet": "lenet-mnist.pt", "mlp": "mlp-mnist.pt", "cifarnet": "cifarnet-cifar10-jpeg.pt", "alex": "alex-cifar10-jpeg.pt"}


def trained(name: str, split: str = "val", data_dir: Path = DATA_DIR):
    """(model, evaluation split, training split) of a checkpoint trained by benchmarks/train.py."""
    path = ROOT / "checkpoints" / CHECKPOINTS[name]
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python benchmarks/train.py --only {name}` first")
    model, meta = load_model(path)
    norm = meta.get("normalize", "standard")
    return model, data.load(meta["dataset"], split, data_dir, normalize=norm), data.load(meta["dataset"], "train", data_dir, normalize=norm)


def save_json(name: str, payload) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def study_sweeps(study: str) -> dict[str, dict[str, dict]] | None:
    """run -> format -> {accuracy, normalized, r2, speedup} of a Hill study's finished runs (study: its
    folder name under results/studies), or None without a store."""
    folder = RESULTS / "studies" / study
    if not (folder / "results.sqlite").exists():
        return None
    info = results.study_info(folder)
    float_accuracy = info["float_accuracy"]
    finished = {r["run"] for r in results.contents(folder)["runs"] if r["complete"]}
    runs: dict[str, dict[str, dict]] = {}
    for row in results.rows(folder):
        if row["run"] in finished:
            runs.setdefault(row["run"], {})[row["labels.label"]] = {
                "accuracy": row["accuracy"], "normalized": row["accuracy"] / float_accuracy, "r2": row["r2"],
                "speedup": row["costs.mac_speedup"]}
    return runs


def fastest_meeting(points: dict[str, dict], target: float, formats: list[str] | None = None) -> str | None:
    """The fastest format (of `formats`, default all) whose normalized accuracy meets `target`, or None."""
    meeting = [f for f in (points if formats is None else formats) if f in points and points[f]["normalized"] >= target]
    return max(meeting, key=lambda f: points[f]["speedup"], default=None)

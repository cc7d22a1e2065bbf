"""Hill et al.'s precision search with Hill's method: every product and sum rounded (Figures 9, 10).

    python experiments/hill_predictor.py [--k 2]

Reads the per-operation sweeps of the Hill studies (experiments/configs/hill_*.yaml, run with
`bash experiments/run_studies.sh hill_lenet hill_mlp hill_cifarnet hill_alex`): for every network,
custom floats (E 2..8, M 1..23) and Hill's uniform fixed points L.R with weights, data, products
and sums in the format, rounded to nearest and truncated toward zero. For each rounding mode:

- Figure 9: the correlation between normalized accuracy and the last-layer R^2 on 10 inputs,
  pooled over networks and formats (Hill: 0.96 over AlexNet, CifarNet and LeNet-5).
- Figure 10: for each network left out, a linear model of normalized accuracy on R^2 fitted on the
  other networks' points (float and fixed together, as Hill); the search takes the fastest
  candidate predicted to meet the target, then k real evaluations adding or dropping a bit; the
  result against the exhaustive choice, for float and fixed, at targets from 85% to 100%.

Speed is each point's MAC speedup at fixed area from the study (quantscope.cost.mac; see its
docs for what is fitted). For each rounding mode, networks whose float and fixed runs of that mode
have not both finished are left out and named.
Writes experiments/results/hill_predictor.json and hill_predictor.png/svg.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from common import RESULTS, fastest_meeting, save_json, study_sweeps

from quantscope import search

NETWORKS = ("lenet", "mlp", "cifarnet", "alex")
ROUNDINGS = {"nearest": ("floats-nearest", "fixed-nearest"), "toward_zero": ("floats-truncated", "fixed-truncated")}
TARGETS = (0.85, 0.90, 0.95, 0.97, 0.98, 0.99, 1.00)


def _with(sweeps: dict[str, dict], rounding: str) -> dict[str, dict]:
    """The networks whose float and fixed runs of this rounding mode both finished."""
    return {n: s for n, s in sweeps.items() if set(ROUNDINGS[rounding]) <= set(s)}


def _search(points: dict[str, dict], model: search.LinearAccuracyModel, target: float, k: int) -> dict:
    """Hill's search over one family's points (their R^2 probes and accuracies already measured)."""
    def point(plan):
        p = points[str(plan.default.weights)]
        return search.Point(plan, p["accuracy"], 0.0, p["r2"])

    res = search.hill_search(r2_of=lambda plan: points[str(plan.default.weights)]["r2"], evaluate=point, candidates=list(points),
                             speed=lambda f: points[str(f)]["speedup"], model=model, float_accuracy=1.0, target=target, k=k)
    chosen = str(res.chosen) if res.chosen else None
    predicted_first = max((c for c, v in res.predictions.items() if v >= target), key=lambda c: points[c]["speedup"], default=None)
    return {"chosen": chosen, "speedup": points[chosen]["speedup"] if chosen else None, "evaluations": res.evaluations,
            "prediction_only": predicted_first, "prediction_only_met": bool(predicted_first and points[predicted_first]["normalized"] >= target)}


def _normalized_points(points: dict[str, dict]) -> dict[str, dict]:
    """The family's points with accuracy replaced by normalized accuracy (the search compares with 1.0)."""
    return {f: {**p, "accuracy": p["normalized"]} for f, p in points.items()}


def _evaluate(sweeps: dict[str, dict], rounding: str, k: int) -> list[dict]:
    rows = []
    runs = ROUNDINGS[rounding]
    for left_out in sweeps:
        pairs = [(p["r2"], p["normalized"]) for n, s in sweeps.items() if n != left_out for run in runs for p in s[run].values()]
        model = search.LinearAccuracyModel.fit(pairs)
        for family, run in zip(("float", "fixed"), runs):
            points = _normalized_points(sweeps[left_out][run])
            for target in TARGETS:
                best = fastest_meeting(points, target)
                found = _search(points, model, target, k)
                rows.append({"rounding": rounding, "network": left_out, "family": family, "target": target,
                             "exhaustive": best, "exhaustive_speedup": points[best]["speedup"] if best else None, **found,
                             "same": found["chosen"] == best, "model": [model.slope, model.intercept]})
    return rows


def _correlation(sweeps: dict[str, dict], rounding: str) -> float:
    xs, ys = zip(*[(min(max(p["r2"], 0.0), 1.0), p["normalized"]) for s in sweeps.values() for run in ROUNDINGS[rounding]
                   for p in s[run].values()])
    return float(np.corrcoef(xs, ys)[0, 1])


def _figure(by_rounding: dict[str, dict[str, dict]], rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), constrained_layout=True)
    for i, rounding in enumerate(ROUNDINGS):
        for name, s in by_rounding[rounding].items():
            pts = [p for run in ROUNDINGS[rounding] for p in s[run].values()]
            axes[i, 0].scatter([p["speedup"] for p in pts], [p["normalized"] for p in pts], s=8, label=name)
            axes[i, 1].scatter([max(p["r2"], -0.05) for p in pts], [p["normalized"] for p in pts], s=8, label=name)
        for family, marker in (("float", "o"), ("fixed", "s")):
            sel = [r for r in rows if r["rounding"] == rounding and r["family"] == family]
            axes[i, 2].scatter([r["exhaustive_speedup"] or 0 for r in sel], [r["speedup"] or 0 for r in sel], marker=marker, label=family)
        axes[i, 0].set(xscale="log", xlabel="MAC speedup (fixed area)", ylabel="normalized accuracy",
                       title=f"{rounding}: accuracy vs speedup (Hill Fig. 6)")
        axes[i, 1].set(xlabel="last-layer R^2 (10 inputs)", ylabel="normalized accuracy", title=f"{rounding}: Hill Fig. 9")
        axes[i, 2].set(xscale="log", yscale="log", xlabel="exhaustive speedup", ylabel="search (k evaluations) speedup",
                       title=f"{rounding}: Hill Fig. 10, targets 85-100%")
        for ax in axes[i]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    for ext in ("png", "svg"):
        fig.savefig(path.with_suffix(f".{ext}"), dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=2, help="real evaluations the search may spend")
    args = parser.parse_args()
    stored = {n: s for n in NETWORKS if (s := study_sweeps(f"hill-{n}")) is not None}
    by_rounding = {rounding: _with(stored, rounding) for rounding in ROUNDINGS}
    for rounding, sweeps in by_rounding.items():
        if len(sweeps) < 2:
            raise SystemExit(f"{rounding}: needs the float and fixed runs of at least two Hill studies; finished: {', '.join(sweeps) or 'none'}")
    rows = [r for rounding, sweeps in by_rounding.items() for r in _evaluate(sweeps, rounding, args.k)]
    correlation = {rounding: _correlation(sweeps, rounding) for rounding, sweeps in by_rounding.items()}
    networks = {rounding: list(sweeps) for rounding, sweeps in by_rounding.items()}
    save_json("hill_predictor.json", {"networks": networks, "k": args.k, "correlation": correlation, "rows": rows})
    _figure(by_rounding, rows, RESULTS / "hill_predictor.png")
    for rounding, names in networks.items():
        left = [n for n in NETWORKS if n not in names]
        print(f"{rounding}: networks {', '.join(names)}" + (f"; left out (runs not finished): {', '.join(left)}" if left else ""))
    for rounding, r in correlation.items():
        print(f"Figure 9, {rounding}: correlation of normalized accuracy with R^2 = {r:.3f} (Hill: 0.96)")
    print("| rounding | network | family | target | exhaustive (speedup) | search, k evaluations (speedup) | same | prediction alone met target |")
    print("| --- | --- | --- | ---: | --- | --- | --- | --- |")
    for r in rows:
        ex = f"{r['exhaustive']} ({r['exhaustive_speedup']:.1f}x)" if r["exhaustive"] else "none"
        se = f"{r['chosen']} ({r['speedup']:.1f}x)" if r["chosen"] else "none met"
        print(f"| {r['rounding']} | {r['network']} | {r['family']} | {100 * r['target']:.0f}% | {ex} | {se} | {'yes' if r['same'] else 'no'} | "
              f"{'yes' if r['prediction_only_met'] else 'no'} |")
    for rounding, sweeps in by_rounding.items():
        sel = [r for r in rows if r["rounding"] == rounding]
        print(f"{rounding}: same choice as exhaustive in {sum(r['same'] for r in sel)} of {len(sel)} searches "
              f"({args.k} evaluations each, of {sum(len(s[ROUNDINGS[rounding][0]]) + len(s[ROUNDINGS[rounding][1]]) for s in sweeps.values())} points)")


if __name__ == "__main__":
    main()

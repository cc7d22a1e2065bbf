"""Hill et al.: predict the fastest custom float meeting 99% normalized accuracy from last-layer
R^2 plus two refinement evaluations, against an exhaustive sweep (Figures 6, 8, 10).

    python experiments/hill_predictor.py [--limit 1000]

For LeNet and the MLP (MNIST), CifarNet and ALEX (CIFAR-10, shared JPEG copy): an exhaustive
sweep of float<E,M> (E 2..8, M 1..23) for weights and data on the validation split records
accuracy and the R^2 of the last-layer outputs on 10 inputs. Leaving each network out, a linear
model of normalized accuracy on R^2 is fitted on the other networks' points; the search probes
R^2 for every candidate, picks the fastest predicted to meet the target (speed: the fitted MAC
model's speedup), and spends k = 2 real evaluations adding or dropping a mantissa bit. Arithmetic
is not rounded per operation here (storage formats only; see README). About 6 minutes.
"""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import torch
from common import RESULTS, save_json, trained

from quantscope import search
from quantscope.cost.mac import MacModel

NETWORKS = ("lenet", "mlp", "cifarnet", "alex")
TARGET = 0.99


def sweep_network(name: str, limit: int) -> dict:
    model, val, train = trained(name, "val")
    ev = search.Evaluator(model, val, costs=(), limit=limit, calibration=train.tensors(limit=256)[0])
    fmts = search.float_formats()
    res = search.sweep(ev, search.uniform_plans(fmts))
    return {"network": name, "float_accuracy": ev.float_accuracy,
            "points": [{"format": str(f), "accuracy": p.accuracy, "normalized": p.accuracy / ev.float_accuracy, "r2": p.r2}
                       for f, p in zip(fmts, res.points)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=1000, help="validation images per evaluation")
    args = parser.parse_args()
    torch.set_num_threads(2)
    mac = MacModel.load()
    sweeps = {n: sweep_network(n, args.limit) for n in NETWORKS}
    rows = []
    for name in NETWORKS:
        pts = {p["format"]: p for p in sweeps[name]["points"]}
        others = [(p["r2"], p["normalized"]) for n in NETWORKS if n != name for p in sweeps[n]["points"]]
        model = search.LinearAccuracyModel.fit(others)
        fa = sweeps[name]["float_accuracy"]
        ok = [f for f, p in pts.items() if p["normalized"] >= TARGET]
        exhaustive = max(ok, key=lambda f: mac.speedup(f)) if ok else None
        result = search.hill_search(
            r2_of=lambda plan, pts=pts: pts[str(plan.default.weights)]["r2"],
            evaluate=lambda plan, pts=pts: search.Point(plan, pts[str(plan.default.weights)]["accuracy"], 0.0, pts[str(plan.default.weights)]["r2"]),
            candidates=list(pts), speed=mac.speedup, model=model, float_accuracy=fa, target=TARGET, k=2,
        )
        chosen = str(result.chosen) if result.chosen else None
        rows.append({"network": name, "exhaustive": exhaustive, "exhaustive_speedup": mac.speedup(exhaustive) if exhaustive else None,
                     "predicted": chosen, "predicted_speedup": mac.speedup(chosen) if chosen else None, "same": chosen == exhaustive,
                     "evaluations": result.evaluations, "probes": result.probes, "exhaustive_evaluations": len(pts),
                     "evaluated": [str(f) for f, _ in result.evaluated], "model": [model.slope, model.intercept]})
    save_json("hill_predictor.json", {"sweeps": sweeps, "rows": rows, "target": TARGET})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), constrained_layout=True)
    for name in NETWORKS:
        pts = sweeps[name]["points"]
        axes[0].scatter([mac.speedup(p["format"]) for p in pts], [p["normalized"] for p in pts], s=10, label=name)
        axes[1].scatter([max(p["r2"], -0.05) for p in pts], [p["normalized"] for p in pts], s=10, label=name)
    axes[0].set(xscale="log", xlabel="MAC speedup over float32 (fixed area)", ylabel="normalized accuracy", title="accuracy vs speedup (Hill Fig. 6)")
    axes[1].set(xlabel="last-layer R^2 (10 inputs, clipped)", ylabel="normalized accuracy", title="accuracy vs R^2 (Hill Fig. 8)")
    for ax in axes:
        ax.axhline(TARGET, color="gray", ls=":")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"hill_predictor.{ext}", dpi=110)
    print("| network | exhaustive choice (speedup) | predictor + 2 evaluations (speedup) | same | evaluations | R^2 probes |")
    print("| --- | --- | --- | --- | ---: | ---: |")
    for r in rows:
        ex = f"{r['exhaustive']} ({r['exhaustive_speedup']:.2f}x)" if r["exhaustive"] else "-"
        pr = f"{r['predicted']} ({r['predicted_speedup']:.2f}x)" if r["predicted"] else "none met the target"
        print(f"| {r['network']} | {ex} | {pr} | {'yes' if r['same'] else 'no'} | {r['evaluations']} of {r['exhaustive_evaluations']} | {r['probes']} |")
    print(f"same choice in {sum(r['same'] for r in rows)} of {len(rows)} cases")


if __name__ == "__main__":
    main()

"""Judd et al.: greedy per-layer data precision (Table 2, Figure 5) and per-layer sensitivity
(Figure 3) for LeNet (MNIST) and CifarNet (CIFAR-10, the shared JPEG copy).

    python experiments/judd_search.py [--networks lenet,cifarnet]

Evaluates on the validation split (10% of each test class). Data formats are fixed point I.F per
layer, unsigned where the calibration batch shows a layer's input is never negative (the image,
post-ReLU data) and signed otherwise (I then counts the sign bit); weights stay float, as in
Judd's traffic study. Steps:
a uniform sweep of I.F finds the smallest uniform precision within 0.1% of float (the start) and
the best uniform plan per tolerance; greedy descent then records every point; the table compares
greedy's lowest-traffic plan per tolerance with the best uniform one and with Judd's Table 2.
Sensitivity varies one layer at a time like Figure 3. About 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import torch
from common import RESULTS, save_json, trained

import quantscope as qs
from quantscope import published, search

JUDD = {net: {tol: ("-".join(f"{i}.{f}" for i, f in widths), tr) for n, tol, widths, tr in published.JUDD_TABLE2 if n == net}
        for net in ("lenet", "cifarnet")}
TOLERANCES = (0.01, 0.02, 0.05, 0.10)


def widths_of(plan: qs.PrecisionPlan, layers: list[str]) -> str:
    parts = []
    for layer in layers:
        f = plan.for_layer(layer).data
        parts.append(f"{f.bits - f.frac}.{f.frac}")
    return "-".join(parts)


def run(name: str) -> dict:
    model, val, train = trained(name, "val")
    layers = [o.name for o in qs.layers(model, val.tensors(limit=1)[0])]
    calibration = train.tensors(limit=256)[0]
    ev = search.Evaluator(model, val, costs=("traffic",), calibration=calibration)
    signed = [r.signs() for r in search.layer_ranges(model, calibration)]
    fa = ev.float_accuracy
    judd = search.judd_descent(ev, layers, fa, tolerances=TOLERANCES, signed=signed)
    uni, greedy = judd.uniform, judd.greedy
    rows = []
    for tol in TOLERANCES:
        key = f"{tol:.0%}"
        best_u = judd.best_uniform(tol, fa)
        best_g = greedy.best[key]
        rows.append({"tolerance": key, "greedy_widths": widths_of(best_g.plan, layers), "greedy_traffic": best_g.costs["traffic"],
                     "greedy_accuracy": best_g.accuracy, "uniform_widths": "%d.%d" % tuple(best_u.labels["uniform"]),
                     "uniform_traffic": best_u.costs["traffic"], "uniform_accuracy": best_u.accuracy,
                     "judd_widths": JUDD[name][key][0], "judd_tr": JUDD[name][key][1]})
    ref = search.data_plan(layers, [(16, 8)] * len(layers), weights="fixed<16,12>")
    sens = search.sensitivity(ev, layers, ref, weight_fraction_bits=range(0, 13), data_integer_bits=range(1, 17), data_fraction_bits=range(0, 9))
    return {"network": name, "float_accuracy": fa, "layers": layers, "signed": signed, "start": list(judd.start), "rows": rows,
            "greedy_points": [{"widths": p.labels["widths"], "traffic": p.costs["traffic"], "accuracy": p.accuracy} for p in greedy.points],
            "uniform_points": [{"widths": p.labels["uniform"], "traffic": p.costs["traffic"], "accuracy": p.accuracy} for p in uni.points],
            "sensitivity": [{**p.labels, "relative_accuracy": p.accuracy / fa} for p in sens.points],
            "evaluations": ev.evaluations}


def plot(results: list[dict]) -> None:
    fig, axes = plt.subplots(len(results), 3, figsize=(15, 4 * len(results)), constrained_layout=True, squeeze=False)
    for row, res in zip(axes, results):
        for ax, what in zip(row, ("weight fraction bits", "data integer bits", "data fraction bits")):
            for layer in res["layers"]:
                pts = [p for p in res["sensitivity"] if p["layer"] == layer and p["what"] == what]
                ax.plot([p["bits"] for p in pts], [p["relative_accuracy"] for p in pts], "o-", ms=3, label=layer)
            ax.set(title=f"{res['network']}: {what}", xlabel="bits", ylabel="accuracy relative to float", ylim=(0, 1.05))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"judd_figure3.{ext}", dpi=110)
    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 4.5), constrained_layout=True, squeeze=False)
    for ax, res in zip(axes[0], results):
        fa = res["float_accuracy"]
        ax.scatter([p["traffic"] for p in res["uniform_points"]], [p["accuracy"] / fa for p in res["uniform_points"]], s=12, label="uniform")
        ax.scatter([p["traffic"] for p in res["greedy_points"]], [p["accuracy"] / fa for p in res["greedy_points"]], s=12, label="mixed (greedy)")
        best = [(r["greedy_traffic"], r["greedy_accuracy"] / fa) for r in res["rows"]]
        ax.plot(*zip(*sorted(best)), "r*-", ms=10, label="best per tolerance")
        ax.set(title=f"{res['network']}: traffic vs accuracy (Judd Fig. 5)", xlabel="traffic ratio vs 32-bit",
               ylabel="accuracy relative to float", ylim=(0.85, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"judd_figure5.{ext}", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", default="lenet,cifarnet")
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = [run(n) for n in args.networks.split(",")]
    save_json("judd_search.json", results)
    plot(results)
    print("| network | tolerance | greedy I.F per layer | greedy TR | best uniform | uniform TR | Judd I.F | Judd TR |")
    print("| --- | --- | --- | ---: | --- | ---: | --- | ---: |")
    for res in results:
        for r in res["rows"]:
            print(f"| {res['network']} | {r['tolerance']} | {r['greedy_widths']} | {r['greedy_traffic']:.3f} | {r['uniform_widths']} | "
                  f"{r['uniform_traffic']:.3f} | {r['judd_widths']} | {r['judd_tr']:.2f} |")
        print(f"{res['network']}: float accuracy {res['float_accuracy']:.4f}, start {res['start']}, {res['evaluations']} evaluations")


if __name__ == "__main__":
    main()

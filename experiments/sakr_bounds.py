"""Sakr et al.'s bounds against simulation: mismatch and test error vs bits, MNIST MLP and LeNet.

    python experiments/sakr_bounds.py [--examples 2000]

For B = 2..16 with B_W = B_A and with the precision rule's offset (B_W = B_A + round(log2
sqrt(E_W/E_A))), computes Theorem 1 and Theorem 2 from one pass over the estimation set (the
test images) and the simulated mismatch of the fixed-point network on the same test images (the bounds are
expectations over the data, so they are checked on the set they are estimated on); plots them
like Sakr's figures (bound vs simulated test error against bits). The rule's offset comes from a
first pass over 500 images. For B_A <= 5 it also estimates, by Monte Carlo (10 noise draws per
image), the mismatch of the model both theorems describe: the float outputs plus their first-order
response to independent uniform noise (`search.linearized_mismatch`), and the real network with that
noise added instead of rounding (`search.noise_mismatch`, 10 draws). About 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json

import matplotlib.pyplot as plt
import torch
from common import RESULTS, save_json, trained

import quantscope as qs
from quantscope import metrics, search
from quantscope.train import predict

BITS = list(range(2, 17))
LINEARIZED_UP_TO = 5  # Monte Carlo of the theorems' own (first-order, uniform-noise) model at coarse precisions


def run(name: str, examples: int) -> dict:
    model, test, _ = trained(name, "test")
    test = test.subset(slice(0, examples))
    x, y = test.tensors()
    bounds, pairs, offset = search.sakr_sweep(model, x, y, BITS)
    float_logits = predict(model, test)
    float_error = 1 - metrics.topk_accuracy(float_logits, test.labels)
    rows = []
    for b_a, b_w in pairs:
        logits = predict(qs.emulate(model, bounds.plan(b_a, b_w)), test)
        rows.append({"b_a": b_a, "b_w": b_w, "simulated_mismatch": metrics.mismatch_rate(float_logits, logits),
                     "simulated_error": 1 - metrics.topk_accuracy(logits, test.labels),
                     "theorem1": bounds.theorem1(b_a, b_w), "theorem2": bounds.theorem2[(b_a, b_w)]})
        if b_a <= LINEARIZED_UP_TO:
            rows[-1]["linearized_mismatch"] = search.linearized_mismatch(model, x, b_a, b_w, bounds.ranges, trials=10)
            rows[-1]["noise_mismatch"] = search.noise_mismatch(model, x, b_a, b_w, bounds.ranges, draws=10)
        r = rows[-1]
        lin = f"  linearized {r['linearized_mismatch']:.4f}  uniform noise {r['noise_mismatch']:.4f}" if "linearized_mismatch" in r else ""
        print(f"{name} B_A={b_a:2d} B_W={b_w:2d} mismatch {r['simulated_mismatch']:.4f}  T1 {r['theorem1']:.4g}  T2 {r['theorem2']:.4g}{lin}",
              flush=True)
    return {"network": name, "e_a": bounds.e_a, "e_w": bounds.e_w, "rule_offset": offset, "float_error": float_error,
            "estimation_examples": len(x), "rows": rows}


def plot(results: list[dict]) -> None:
    fig, axes = plt.subplots(1, len(results) * 2, figsize=(6 * len(results), 4.2), constrained_layout=True)
    for k, res in enumerate(results):
        for j, same in enumerate((True, False)):
            ax = axes[2 * k + j]
            off = 0 if same else res["rule_offset"]
            rows = sorted({r["b_a"]: r for r in res["rows"] if r["b_w"] - r["b_a"] == off}.values(), key=lambda r: r["b_a"])
            b = [r["b_a"] for r in rows]
            fe = res["float_error"]
            ax.semilogy(b, [fe + r["theorem1"] for r in rows], "o--", label="float error + Theorem 1")
            ax.semilogy(b, [fe + r["theorem2"] for r in rows], "s--", label="float error + Theorem 2")
            ax.semilogy(b, [r["simulated_error"] for r in rows], "k^-", label="simulated test error")
            ax.semilogy(b, [max(r["simulated_mismatch"], 1e-5) for r in rows], "x:", color="gray", label="simulated mismatch")
            ax.set_ylim(1e-3 if fe > 0.01 else 1e-4, 1.5)
            title = "B_W = B_A" if same else f"B_W = B_A {res['rule_offset']:+d} (rule)"
            ax.set(title=f"{res['network']}: {title}", xlabel="B_A (bits)", ylabel="test error / mismatch")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"sakr_bounds.{ext}", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="test images used to estimate and to simulate")
    parser.add_argument("--plot-only", action="store_true", help="redraw from results/sakr_bounds.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.plot_only:
        results = json.loads((RESULTS / "sakr_bounds.json").read_text())
    else:
        results = [run(name, args.examples) for name in ("mlp", "lenet")]
        save_json("sakr_bounds.json", results)
    plot(results)
    for res in results:
        t1 = [r for r in res["rows"] if r["theorem1"] < r["simulated_mismatch"]]
        t2 = [r for r in res["rows"] if r["theorem2"] < r["simulated_mismatch"]]
        tighter = sum(r["theorem2"] <= r["theorem1"] for r in res["rows"])
        lin = [r for r in res["rows"] if "linearized_mismatch" in r]
        lin_ok = sum(r["theorem2"] >= r["linearized_mismatch"] for r in lin)
        noise_ok = sum(r["theorem2"] >= r["noise_mismatch"] for r in lin)
        print(f"{res['network']}: with B_A <= {LINEARIZED_UP_TO}, Theorem 2 >= the linearized model at {lin_ok}/{len(lin)} points and >= the "
              f"network with independent uniform noise at {noise_ok}/{len(lin)}: " +
              ", ".join(f"({r['b_a']},{r['b_w']}) T2 {r['theorem2']:.3f} lin {r['linearized_mismatch']:.3f} noise {r['noise_mismatch']:.3f} "
                        f"rounded {r['simulated_mismatch']:.3f}" for r in lin))
        print(f"{res['network']}: E_A {res['e_a']:.4g} E_W {res['e_w']:.4g} rule B_W - B_A = {res['rule_offset']}; "
              f"Theorem 1 below simulation at {[(r['b_a'], r['b_w']) for r in t1]}, Theorem 2 at {[(r['b_a'], r['b_w']) for r in t2]}; "
              f"Theorem 2 <= Theorem 1 at {tighter}/{len(res['rows'])} points")


if __name__ == "__main__":
    main()

"""Hashemi et al. Tables III-V: accelerator energy per image, ours beside the paper's.

    python experiments/hashemi_tables.py [--json]

Energy per image of LeNet, ConvNet, ALEX, ALEX+ and ALEX++ at the paper's seven precisions on
the DianNao-like tile model (quantscope.cost.accelerator), with the published values and the
differences. Runs in a few seconds (no training: energy depends on shapes and precision only).
"""

from __future__ import annotations

import argparse
import json

import quantscope as qs
from quantscope import cost, models, published

PLANS = published.HASHEMI_PRECISIONS
PUBLISHED = published.HASHEMI_ENERGY_UJ
BASELINE = {"lenet": "lenet", "convnet": "convnet", "alex": "alex", "alex+": "alex", "alex++": "alex"}


def rows() -> list[dict]:
    out = []
    base_energy = {}
    for net in PUBLISHED:
        m, x = models.create(net), models.example_input(net)
        for (label, (w, d)), paper in zip(PLANS.items(), PUBLISHED[net]):
            e = cost.accelerator_energy(m, qs.PrecisionPlan.uniform(weights=w, data=d), x).energy_uj
            if label.startswith("Floating"):
                base_energy[net] = e
            ref = base_energy[BASELINE[net]]
            pub_ref = PUBLISHED[BASELINE[net]][0]
            out.append({"network": net, "precision": label, "energy_uj": round(e, 2), "published_uj": paper,
                        "error_pct": None if paper is None else round(100 * (e / paper - 1), 1),
                        "saving_pct": round(100 * (1 - e / ref), 2),
                        "published_saving_pct": None if paper is None else round(100 * (1 - paper / pub_ref), 2)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = rows()
    if args.json:
        print(json.dumps(table, indent=1))
        return
    print("| network | precision (w, in) | energy (uJ) | Hashemi (uJ) | difference | saving | Hashemi saving |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in table:
        if r["published_uj"] is None and r["network"] in ("alex+", "alex++"):
            continue
        pub = "-" if r["published_uj"] is None else f"{r['published_uj']:.2f}"
        err = "-" if r["error_pct"] is None else f"{r['error_pct']:+.1f}%"
        ps = "-" if r["published_saving_pct"] is None else f"{r['published_saving_pct']:.2f}%"
        print(f"| {r['network']} | {r['precision']} | {r['energy_uj']:.2f} | {pub} | {err} | {r['saving_pct']:.2f}% | {ps} |")


if __name__ == "__main__":
    main()

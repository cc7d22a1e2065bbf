"""Judd et al. Figure 4: single-image memory traffic, data against weights, at 32 bits.

    python experiments/judd_figure4.py

For Judd's five networks, the accesses (millions of 32-bit elements) of one image: weights read
once, data counted two ways by quantscope.cost.memory.traffic: crossing Judd's layer groups only
(an inception module or a conv+ReLU+pool stage is one group; what it keeps inside is not traffic)
and at every op (each product op its own group, so the data inside Judd's groups count too).
Judd: "weights ... dominate traffic in three of the networks. GoogLeNet is the exception where
data dominate traffic even in the single image use case." Writes
experiments/results/judd_figure4.md. Runs in seconds (shapes only).
"""

from __future__ import annotations

from common import RESULTS

from quantscope import cost, models
from quantscope.files import write_atomic

NETWORKS = ("lenet", "convnet", "alexnet", "nin", "googlenet")


def accesses(net: str) -> tuple[float, float, float]:
    """(weights, data across Judd's groups, data at every op) in millions of 32-bit accesses."""
    dev = "meta" if models.info(net).dataset == "imagenet" else None
    m, x = models.create(net, device=dev), models.example_input(net, device=dev)
    grouped = cost.traffic(m, None, x, batch_size=1, groups=models.judd_groups(net, m))
    per_op = cost.traffic(m, None, x, batch_size=1)
    return grouped.weight_bits / 32e6, grouped.data_bits / 32e6, per_op.data_bits / 32e6


def _dominant(data: float, weights: float) -> str:
    return "data" if data > weights else "weights"


def main() -> None:
    lines = ["| network | weights (M accesses) | data across Judd's groups | data at every op | dominant (groups / every op) |",
             "| --- | ---: | ---: | ---: | --- |"]
    for net in NETWORKS:
        w, grouped, per_op = accesses(net)
        lines.append(f"| {net} | {w:.2f} | {grouped:.2f} | {per_op:.2f} | {_dominant(grouped, w)} / {_dominant(per_op, w)} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    write_atomic(RESULTS / "judd_figure4.md", "# Judd et al. Figure 4, single image (`python experiments/judd_figure4.py`)\n\n" + text)


if __name__ == "__main__":
    main()

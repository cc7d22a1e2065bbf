"""Judd et al. Table 2: traffic ratios of the published per-layer widths, ours beside the paper's.

    python experiments/judd_table2.py

For every row of Table 2 whose bit list has one entry per layer (the text extraction lost entries
in some AlexNet and GoogLeNet rows), the data traffic ratio against 32 bits in the batch use case,
with the accounting of quantscope.cost.memory. Runs in seconds (shapes only).
"""

from __future__ import annotations

from quantscope import cost, models

ROWS = [  # (network, tolerance, widths as I.F pairs or total bits, published TR)
    ("lenet", "1%", [(1, 1), (3, 1), (3, 0), (3, 0)], 0.08), ("lenet", "2%", [(1, 1), (2, 0), (3, 0), (2, 0)], 0.06),
    ("lenet", "5%", [(1, 1), (1, 0), (2, 0), (2, 0)], 0.05), ("lenet", "10%", [(1, 0), (2, 1), (3, 0), (2, 0)], 0.05),
    ("cifarnet", "1%", [(8, 0), (7, 0), (7, 0), (5, 0), (5, 0)], 0.24), ("cifarnet", "2%", [(7, 0), (8, 0), (6, 0), (4, 0), (4, 0)], 0.22),
    ("cifarnet", "5%", [(7, 0), (8, 0), (5, 0), (3, 0), (3, 0)], 0.22), ("cifarnet", "10%", [(7, 0), (8, 0), (5, 0), (3, 0), (3, 0)], 0.22),
    ("alexnet", "5%", [10, 8, 8, 8, 7, 7, 5, 3], 0.28),
    ("nin", "1%", [10, 10, 9, 12, 12, 11, 11, 11, 10, 10, 10, 9], 0.32), ("nin", "2%", [10, 10, 9, 12, 12, 11, 11, 11, 10, 10, 10, 9], 0.32),
    ("nin", "5%", [10, 10, 10, 11, 10, 11, 11, 11, 10, 9, 9, 8], 0.32), ("nin", "10%", [9, 10, 9, 11, 11, 10, 10, 10, 9, 9, 9, 8], 0.30),
    ("googlenet", "2%", [13, 11, 11, 10, 12, 11, 11, 11, 11, 10, 9], 0.35), ("googlenet", "10%", [12, 9, 11, 11, 11, 10, 10, 10, 10, 9, 9], 0.32),
]


def traffic_ratio(net: str, widths) -> float:
    dev = "meta" if models.info(net).dataset == "imagenet" else None
    m, x = models.create(net, device=dev), models.example_input(net, device=dev)
    groups = models.judd_groups(net, m)
    plan, out_bits = cost.judd_plan(m, x, widths, groups)
    return cost.traffic(m, plan, x, batch_size=None, groups=groups, output_bits=out_bits).data_ratio


def main() -> None:
    print("| network | tolerance | bits per layer | TR (ours) | TR (Judd) | difference |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for net, tol, widths, published in ROWS:
        tr = traffic_ratio(net, widths)
        bits = "-".join(f"{w[0]}.{w[1]}" if isinstance(w, tuple) else str(w) for w in widths)
        print(f"| {net} | {tol} | {bits} | {tr:.3f} | {published:.2f} | {tr - published:+.3f} |")


if __name__ == "__main__":
    main()

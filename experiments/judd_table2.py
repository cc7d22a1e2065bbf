"""Judd et al. Table 2: traffic ratios of the published per-layer widths, ours beside the paper's.

    python experiments/judd_table2.py

For every row of Table 2 whose bit list has one entry per layer (the text extraction lost entries
in some AlexNet and GoogLeNet rows), the data traffic ratio against 32 bits in the batch use case,
with the accounting of quantscope.cost.memory. Runs in seconds (shapes only).
"""

from __future__ import annotations

from quantscope import cost, models, published

ROWS = published.JUDD_TABLE2


def traffic_ratio(net: str, widths) -> float:
    dev = "meta" if models.info(net).dataset == "imagenet" else None
    m, x = models.create(net, device=dev), models.example_input(net, device=dev)
    groups = models.judd_groups(net, m)
    plan, out_bits = cost.judd_plan(m, x, widths, groups)
    return cost.traffic(m, plan, x, batch_size=None, groups=groups, output_bits=out_bits).data_ratio


def main() -> None:
    print("| network | tolerance | bits per layer | TR (ours) | TR (Judd) | difference |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for net, tol, widths, paper in ROWS:
        tr = traffic_ratio(net, widths)
        bits = "-".join(f"{w[0]}.{w[1]}" if isinstance(w, tuple) else str(w) for w in widths)
        print(f"| {net} | {tol} | {bits} | {tr:.3f} | {paper:.2f} | {tr - paper:+.3f} |")


if __name__ == "__main__":
    main()

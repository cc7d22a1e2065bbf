"""How much Sakr's E_A, E_W and the precision rule move with the estimation set (issue 18).

    python experiments/sakr_spread.py

For the MNIST MLP and LeNet, under our range convention and Sakr's, E_A, E_W and the rule's
B_W - B_A estimated on: the first 100, 250, 500 and 1,000 held-out `val` images; five disjoint
200-image slices of `val` (min / median / max); 1,000 and 2,000 training images (their larger
margins shrink both). Writes experiments/results/sakr_spread.md. A few minutes on 2 cores.
"""

from __future__ import annotations

import statistics

import torch
from common import RESULTS, trained

from quantscope import search
from quantscope.files import write_atomic

NETWORKS = ("mlp", "lenet")
CONVENTIONS = ("max", "paper")


def _estimate(model, x: torch.Tensor, convention: str) -> tuple[float, float, int]:
    b = search.sakr_bounds(model, x, ranges=search.layer_ranges(model, x, convention))
    return b.e_a, b.e_w, b.rule_offset()


def rows() -> list[list[str]]:
    out = []
    for net in NETWORKS:
        model, val, train = trained(net, "val")
        xv, xt = val.tensors()[0], train.tensors(limit=2000)[0]
        for convention in CONVENTIONS:
            sets = {f"val, first {n}": xv[:n] for n in (100, 250, 500, 1000)}
            sets |= {"train, first 1000": xt[:1000], "train, first 2000": xt}
            for label, x in sets.items():
                e_a, e_w, offset = _estimate(model, x, convention)
                out.append([net, convention, label, f"{e_a:.4g}", f"{e_w:.4g}", f"{offset:+d}"])
            slices = [_estimate(model, xv[k * 200:(k + 1) * 200], convention) for k in range(5)]
            spread = [f"{min(v):.4g} / {statistics.median(v):.4g} / {max(v):.4g}" for v in zip(*[s[:2] for s in slices])]
            offsets = sorted(s[2] for s in slices)
            out.append([net, convention, "val, 5 disjoint slices of 200 (min / median / max)", *spread,
                        " ".join(f"{o:+d}" for o in offsets)])
            print(out[-1], flush=True)
    return out


def main() -> None:
    torch.set_num_threads(2)
    table = rows()
    lines = ["Sakr's E_A, E_W and rule offset B_W - B_A against the estimation set (`python experiments/sakr_spread.py`; "
             "*measured*). Ranges: `max` is ours, `paper` is Sakr's [-1, 1) / [0, 2).", "",
             "| network | ranges | estimation set | E_A | E_W | B_W - B_A |", "| --- | --- | --- | ---: | ---: | ---: |"]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    write_atomic(RESULTS / "sakr_spread.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

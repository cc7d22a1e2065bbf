"""Hill et al. Figure 8: the running sum of one neuron's weighted inputs under customized
accumulator precisions, against the exact sum.

    python experiments/hill_figure8.py        # seconds

The neuron is LeNet's (trained checkpoint) first fully connected unit with the largest activation
on the first test image; its 800 products are summed in order under float<8,23> (IEEE single),
custom floats and fixed point, with rounding after every multiply and add (arith.trace_accumulation).
Writes experiments/results/hill_figure8.{png,svg} and prints each format's final error.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from common import RESULTS, trained

from quantscope.arith import trace_accumulation

FORMATS = ["float<8,23>", "float<5,10>", "float<6,7>", "float<4,3>", "fixed<16,8>", "fixed<12,6>", "fixed<8,4>"]


def main() -> None:
    model, test, _ = trained("lenet", "test")
    x, _ = test.tensors(limit=1)
    captured = {}
    handle = model.ip1.register_forward_pre_hook(lambda m, args: captured.setdefault("a", args[0].detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    a = captured["a"][0]
    with torch.no_grad():
        unit = int((model.ip1.weight @ a + model.ip1.bias).argmax())
    traces = trace_accumulation(model.ip1.weight[unit], a, FORMATS, bias=float(model.ip1.bias[unit].detach()))
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for name, steps in traces.items():
        ax.plot(steps.numpy(), lw=2.2 if name == "exact" else 1.1, color="k" if name == "exact" else None, label=name)
        print(f"{name:12s} final {float(steps[-1]): .6f}  error {float(steps[-1] - traces['exact'][-1]): .3g}")
    ax.set_xlabel("products accumulated (LeNet ip1, input order)")
    ax.set_ylabel("partial sum")
    ax.set_title(f"Accumulation of neuron ip1[{unit}] (Hill et al., Figure 8)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"hill_figure8.{ext}")
    print(f"wrote {RESULTS / 'hill_figure8.png'}")


if __name__ == "__main__":
    main()

"""Hill et al. Figure 7: MAC speedup and energy saving over float32 across formats.

    python experiments/hill_figure7.py [--out experiments/results]

Writes heat maps of speedup at fixed area and energy saving for custom floats (exponent bits x
mantissa bits) and fixed point (integer bits x fraction bits), from the structural MAC model
(quantscope.cost.mac: gate-count priors fitted to Horowitz, Hill's four numbers held out and
marked on the figure), as PNG and SVG, and the grid as CSV. Runs in seconds.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from quantscope.cost.mac import HILL_POINTS, MacModel  # noqa: E402

EXPONENTS = range(2, 9)
MANTISSAS = range(1, 24)
INTEGER_BITS = range(1, 17)
FRACTION_BITS = range(0, 17)


def grids(model: MacModel) -> dict[str, np.ndarray]:
    """Speedup and energy saving over float32 for every float and fixed format of the figure."""
    f_speed = np.array([[model.speedup(f"float<{e},{m}>") for m in MANTISSAS] for e in EXPONENTS])
    f_energy = np.array([[model.energy_saving(f"float<{e},{m}>") for m in MANTISSAS] for e in EXPONENTS])
    x_speed = np.array([[model.speedup(f"fixed<{i + r},{r}>") for i in INTEGER_BITS] for r in FRACTION_BITS])
    x_energy = np.array([[model.energy_saving(f"fixed<{i + r},{r}>") for i in INTEGER_BITS] for r in FRACTION_BITS])
    return {"float_speedup": f_speed, "float_energy": f_energy, "fixed_speedup": x_speed, "fixed_energy": x_energy}


def plot(g: dict[str, np.ndarray], out: Path) -> list[Path]:
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    panels = [
        ("float_speedup", "(a) floating-point speedup", "mantissa bits", "exponent bits", list(MANTISSAS), list(EXPONENTS)),
        ("fixed_speedup", "(b) fixed-point speedup", "integer bits (L)", "fraction bits (R)", list(INTEGER_BITS), list(FRACTION_BITS)),
        ("float_energy", "(c) floating-point energy saving", "mantissa bits", "exponent bits", list(MANTISSAS), list(EXPONENTS)),
        ("fixed_energy", "(d) fixed-point energy saving", "integer bits (L)", "fraction bits (R)", list(INTEGER_BITS), list(FRACTION_BITS)),
    ]
    for ax, (key, title, xl, yl, xs, ys) in zip(axes.flat, panels):
        im = ax.imshow(g[key], origin="lower", aspect="auto", cmap="viridis", norm=matplotlib.colors.LogNorm(),
                       extent=(xs[0] - 0.5, xs[-1] + 0.5, ys[0] - 0.5, ys[-1] + 0.5))
        ax.set(title=title, xlabel=xl, ylabel=yl)
        fig.colorbar(im, ax=ax, label="x over float32 (log scale)")
    for k, p in enumerate(HILL_POINTS):
        e, m = (int(v) for v in p["format"][6:-1].split(","))
        for ax, key in ((axes[0, 0], "speedup"), (axes[1, 0], "energy_saving")):
            ax.plot(m, e, "r*", ms=12)
            ax.annotate(f"Hill {p['format']}: {p[key]}x", (m, e), xytext=(m + 1.5, e + (0.8 if k == 0 else -1.0)),
                        color="white", fontsize=9, arrowprops=dict(arrowstyle="-", color="white"))
    fig.suptitle("MAC unit vs IEEE float32 (quantscope's structural model, Hill's numbers held out; Hill et al. Figure 7)")
    paths = [out / "hill_figure7.png", out / "hill_figure7.svg"]
    for p in paths:
        fig.savefig(p, dpi=110)
    plt.close(fig)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = MacModel.load()
    g = grids(model)
    with open(out / "hill_figure7_float.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["exponent", "mantissa", "speedup", "energy_saving"])
        for i, e in enumerate(EXPONENTS):
            for j, m in enumerate(MANTISSAS):
                w.writerow([e, m, round(float(g["float_speedup"][i, j]), 4), round(float(g["float_energy"][i, j]), 4)])
    for p in plot(g, out):
        print(f"wrote {p}")
    for p in HILL_POINTS:
        print(f"{p['format']}: speedup {model.speedup(p['format']):.2f} (Hill {p['speedup']}), "
              f"energy saving {model.energy_saving(p['format']):.2f} (Hill {p['energy_saving']})")


if __name__ == "__main__":
    main()

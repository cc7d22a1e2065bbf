"""Hashemi et al. Figure 4 and Table V's claim: a wider network at low precision can match the float
ALEX's accuracy at lower energy ("Power of Two++ (6,16)": 81.26% at 35.93% less energy).

    python experiments/hashemi_figure4.py        # seconds, from the stores

Reads the QAT runs (`table5`) of the studies hashemi_alex, hashemi_alex_plus and
hashemi_alex_plus_plus (`bash experiments/run_studies.sh hashemi_alex hashemi_alex_plus
hashemi_alex_plus_plus`; the last two need the float checkpoints their configs name). Accuracy is
*measured* (our fine-tuned networks), with its binomial standard error on the evaluation images;
energy per image is *calibrated* for ALEX and *predicted* for ALEX+/ALEX++ (see hashemi_tables.py).
As in the paper, every saving is relative to ALEX's float design. The claim holds in our data when
some ALEX+ or ALEX++ point below float precision costs less energy than float ALEX and its accuracy
is not lower than float ALEX's by more than two standard errors of the difference; the table says
which points also beat it by more than two. Networks whose study has not finished are named and
left out. Writes experiments/results/hashemi_figure4.md and hashemi_figure4.png/svg.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from common import RESULTS

from quantscope import published, results
from quantscope.files import write_atomic

STUDIES = {"alex": "hashemi-alex", "alex+": "hashemi-alex-plus", "alex++": "hashemi-alex-plus-plus"}
LABELS = list(published.HASHEMI_PRECISIONS)
FLOAT = LABELS[0]
COLORS = {"alex": "tab:blue", "alex+": "tab:red", "alex++": "tab:green"}
RUN = "table5"


def _points(net: str) -> list[dict] | None:
    """The finished QAT points of one network's study, or None when it has not finished."""
    folder = RESULTS / "studies" / STUDIES[net]
    if not (folder / "results.sqlite").exists():
        return None
    if not any(r["run"] == RUN and r["complete"] for r in results.contents(folder)["runs"]):
        return None
    n = results.study_info(folder)["eval_examples"]
    out = []
    for row in results.rows(folder):
        if row["run"] != RUN:
            continue
        label, acc = row["labels.label"], row["accuracy"]
        i = LABELS.index(label)
        out.append({"network": net, "precision": label, "accuracy": acc, "se": math.sqrt(acc * (1 - acc) / n), "examples": n,
                    "energy_uj": row["costs.energy_uj"], "published_accuracy": published.HASHEMI_ACCURACY_PCT[net][i],
                    "published_uj": published.HASHEMI_ENERGY_UJ[net][i]})
    return out


def _verdict(p: dict, base: dict) -> str:
    """How a point's accuracy compares with float ALEX's, in standard errors of the difference."""
    diff = p["accuracy"] - base["accuracy"]
    se = math.hypot(p["se"], base["se"])
    if diff > 2 * se:
        return "higher"
    return "lower" if diff < -2 * se else "within 2 SE"


def render(points: list[dict], base: dict, missing: list[str]) -> str:
    """The Markdown table and the verdict on the claim (`base`: float ALEX's point)."""
    pub_base = published.HASHEMI_ENERGY_UJ["alex"][0]
    lines = ["Hashemi et al. Figure 4 / Table V claim (`python experiments/hashemi_figure4.py`). Accuracy *measured* after two "
             f"epochs of QAT on {base['examples']:,} CIFAR-10 test images (± one binomial standard error); energy per image on the "
             "DianNao-like tile model, *calibrated* for ALEX and *predicted* for ALEX+/ALEX++; savings relative to float ALEX, "
             "as the paper's.", "",
             "| network | precision (w, in) | accuracy | vs float ALEX | Hashemi accuracy | energy (uJ) | saving | Hashemi saving |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for p in points:
        pub_acc = "-" if p["published_accuracy"] is None else f"{p['published_accuracy']:.2f}%"
        pub_save = "-" if p["published_uj"] is None else f"{100 * (1 - p['published_uj'] / pub_base):.2f}%"
        versus = "(baseline)" if p is base else _verdict(p, base)
        lines.append(f"| {p['network']} | {p['precision']} | {100 * p['accuracy']:.2f} ± {100 * p['se']:.2f}% | {versus} | {pub_acc} "
                     f"| {p['energy_uj']:.2f} | {100 * (1 - p['energy_uj'] / base['energy_uj']):.2f}% | {pub_save} |")
    wins = [p for p in points if p["network"] != "alex" and p["precision"] != FLOAT
            and p["energy_uj"] < base["energy_uj"] and _verdict(p, base) != "lower"]
    lines.append("")
    if wins:
        best = max(wins, key=lambda p: (p["accuracy"], -p["energy_uj"]))
        lines.append(f"Claim holds in our data: {len(wins)} wider low-precision point(s) cost less energy than float ALEX without "
                     f"losing accuracy beyond two standard errors; the most accurate, {best['network']} {best['precision']}, "
                     f"{100 * best['accuracy']:.2f}% against {100 * base['accuracy']:.2f}% ({_verdict(best, base)}) at "
                     f"{100 * (1 - best['energy_uj'] / base['energy_uj']):.1f}% less energy (Hashemi: Power of Two++ (6,16), "
                     "81.26% against 81.22% at 35.93% less).")
    elif missing:
        lines.append("No verdict yet: the wider networks' studies have not finished.")
    else:
        lines.append("Claim does not hold in our data: no wider low-precision point costs less energy than float ALEX "
                     "without losing accuracy beyond two standard errors.")
    if missing:
        lines.append(f"Left out (study not finished): {', '.join(missing)}; run `bash experiments/run_studies.sh "
                     + " ".join(STUDIES[n].replace("-", "_") for n in missing) + "`.")
    return "\n".join(lines) + "\n"


def plot(points: list[dict], base: dict) -> None:
    """Accuracy against energy (log scale) for ours (filled) and the paper's (hollow) points."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for net, color in COLORS.items():
        mine = [p for p in points if p["network"] == net]
        pub = [(p["published_uj"], p["published_accuracy"]) for p in mine if p["published_uj"] and p["published_accuracy"]]
        if mine:
            ax.errorbar([p["energy_uj"] for p in mine], [100 * p["accuracy"] for p in mine], yerr=[200 * p["se"] for p in mine],
                        fmt="o", color=color, label=f"{net} (ours, ±2 SE)")
        if pub:
            ax.scatter(*zip(*pub, strict=True), facecolors="none", edgecolors=color, marker="s", label=f"{net} (Hashemi)")
    ax.axhline(100 * base["accuracy"], color="k", lw=0.8, ls="--", label="float ALEX (ours)")
    ax.set_xscale("log")
    ax.set_xlabel("energy per image (uJ, tile model)")
    ax.set_ylabel("CIFAR-10 accuracy (%)")
    ax.set_title("Accuracy vs energy, ALEX / ALEX+ / ALEX++ (Hashemi et al., Figure 4)")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    for ext in ("png", "svg"):
        fig.savefig(RESULTS / f"hashemi_figure4.{ext}")


def main() -> None:
    found = {net: _points(net) for net in STUDIES}
    if found["alex"] is None:
        raise SystemExit("the hashemi-alex study has not finished: run `bash experiments/run_studies.sh hashemi_alex` first")
    points = [p for pts in found.values() if pts for p in pts]
    base = next(p for p in found["alex"] if p["precision"] == FLOAT)
    text = render(points, base, [net for net, pts in found.items() if pts is None])
    write_atomic(RESULTS / "hashemi_figure4.md", text)
    plot(points, base)
    print(text)


if __name__ == "__main__":
    main()

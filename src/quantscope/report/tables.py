"""The report's tables: the study overview, each run's results, and the papers' published numbers
beside ours (with differences) where the study reproduces one of their tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import published
from ..plan import PrecisionPlan
from .results import RunResult, StudyResults


@dataclass
class Table:
    """A titled table of already-formatted cells."""

    title: str
    caption: str
    columns: list[str]
    rows: list[list[str]]


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def _num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}g}" if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4) else f"{v:.{digits}f}"


def _diff(ours: float | None, theirs: float | None, digits: int = 2) -> str:
    return "–" if ours is None or theirs is None else f"{ours - theirs:+.{digits}f}"


def _formats(record: dict[str, Any]) -> tuple[str, str]:
    d = PrecisionPlan.from_dict(record["plan"]).default
    return str(d.weights), str(d.data)


def overview(results: StudyResults) -> Table:
    cfg, info = results.config, results.info
    distinct = len({p["key"] for r in results.runs for p in r.points})
    rows = [
        ["study", results.name], ["model", cfg["model"].get("name") or cfg["model"].get("module")],
        ["dataset", f"{cfg['dataset']['name']} ({cfg['dataset']['eval_split']} split, {info['eval_examples']} examples)"],
        ["float accuracy", f"{_pct(results.float_accuracy)} %"], ["checkpoint", info["checkpoint"]],
        ["runs", ", ".join(f"{r.name} ({r.kind}, {len(r.points)} points)" for r in results.runs)],
        ["distinct points (each evaluated once)", str(distinct)],
        ["operations emulated", info.get("emulation", "(not recorded: study written before op-level emulation)")],
    ]
    return Table("Study", cfg.get("description") or "", ["", ""], rows)


def plans_table(results: StudyResults, run: RunResult, compare: bool) -> Table:
    """Hashemi Table IV style: precision, accuracy, energy, saving (published beside ours)."""
    net = results.model
    names = list(published.HASHEMI_PRECISIONS)
    has_published = compare and net in published.HASHEMI_ENERGY_UJ and any(p["labels"].get("label") in names for p in run.points)
    base = next((p["costs"].get("energy_uj") for p in run.points if _formats(p) == ("float32", "float32")), None)
    columns = ["precision", "weights", "data", "accuracy (%)", "energy (uJ)", "saving (%)", "MAC speedup"]
    if has_published:
        columns += ["published accuracy (%)", "Δ accuracy", "published energy (uJ)", "Δ energy (%)", "published saving (%)", "Δ saving"]
    rows = []
    for p in run.points:
        label = p["labels"].get("label", "")
        energy = p["costs"].get("energy_uj")
        saving = None if base is None or energy is None else 100 * (1 - energy / base)
        row = [label, *_formats(p), _pct(p["accuracy"]), _num(energy), _num(saving, 2) if saving is not None else "–",
               _num(p["costs"].get("mac_speedup"))]
        if has_published:
            i = names.index(label) if label in names else None
            pick = (lambda table: None if i is None or net not in table else table[net][i])
            acc, e, s = pick(published.HASHEMI_ACCURACY_PCT), pick(published.HASHEMI_ENERGY_UJ), pick(published.HASHEMI_SAVINGS_PCT)
            ours_acc = 100 * p["accuracy"]
            row += [_num(acc, 2) if acc is not None else "–", _diff(ours_acc, acc), _num(e), "–" if e is None or energy is None else f"{100 * (energy / e - 1):+.1f}",
                    _num(s, 2) if s is not None else "–", _diff(saving, s)]
        rows.append(row)
    qat = " after quantization-aware fine-tuning" if run.summary.get("qat") else ""
    caption = f"Accuracy{qat} and the DianNao-like accelerator's energy per image (Hashemi et al., Tables III-V)."
    if has_published:
        caption += f" Published columns: Hashemi et al. for {net}; Δ = ours − published."
    return Table(f"{run.name}: precisions", caption, columns, rows)


def sweep_table(results: StudyResults, run: RunResult) -> Table:
    fa = results.float_accuracy
    costs = list(dict.fromkeys(c for p in run.points for c in p["costs"]))
    rows = [[p["labels"].get("label", ""), _pct(p["accuracy"]), _num(results.relative(p["accuracy"]), 4), _pct(p["mismatch"]), _num(p["r2"], 4),
             *(_num(p["costs"].get(c)) for c in costs)] for p in run.points]
    caption = f"{len(rows)} uniform plans" + (" after QAT" if run.summary.get("qat") else "") + "."
    fast = [p for p in run.points if "mac_speedup" in p["costs"] and p["accuracy"] >= 0.99 * fa]
    if fast:
        best = max(fast, key=lambda p: p["costs"]["mac_speedup"])
        caption += (f" Fastest within 1% of float accuracy (Hill et al., Figure 10): {best['labels'].get('label', '')}, "
                    f"{best['costs']['mac_speedup']:.2f}x MAC speedup at fixed area, {100 * results.relative(best['accuracy']):.2f}% of float accuracy.")
    hill = {h["format"]: h for h in published.HILL_POINTS}
    seen = [p for p in run.points if p["labels"].get("label") in hill and "mac_speedup" in p["costs"]]
    if seen:
        caption += " MAC model at Hill et al.'s AlexNet choices (published in parentheses): " + "; ".join(
            f"{p['labels']['label']} {p['costs']['mac_speedup']:.2f}x speedup ({hill[p['labels']['label']]['speedup']}x)"
            + (f", {p['costs']['mac_energy_saving']:.2f}x energy saving ({hill[p['labels']['label']]['energy_saving']}x)"
               if "mac_energy_saving" in p["costs"] else "") for p in seen) + "."
    return Table(f"{run.name}: sweep", caption, ["format", "accuracy (%)", "relative", "mismatch (%)", "R²", *costs], rows)


def _widths(ws: list | None) -> str:
    return "–" if ws is None else "-".join(f"{i}.{f}" for i, f in ws)


def greedy_table(results: StudyResults, run: RunResult, compare: bool) -> Table:
    """Judd Table 2 style: the best greedy and uniform plan per tolerance, Judd's beside."""
    net = results.model
    judd = {tol: (w, tr) for n, tol, w, tr in published.JUDD_TABLE2 if n == net} if compare else {}
    s = run.summary
    columns = ["tolerance", "greedy I.F per layer", f"greedy {s['cost']}", "greedy accuracy (%)", "best uniform I.F", f"uniform {s['cost']}"]
    if judd:
        columns += ["Judd I.F", "Judd TR", "Δ TR"]
    rows = []
    for r in s["rows"]:
        tol = f"{r['tolerance']:.0%}"
        row = [tol, _widths(r["greedy_widths"]), _num(r["greedy_cost"]), _pct(r["greedy_accuracy"]),
               "–" if r["uniform_width"] is None else "%d.%d" % tuple(r["uniform_width"]), _num(r["uniform_cost"])]
        if judd:
            w, tr = judd.get(tol, (None, None))
            row += ["–" if w is None else _widths(w), _num(tr, 2), _diff(r["greedy_cost"], tr, 3)]
        rows.append(row)
    caption = (f"Judd et al.'s greedy per-layer search from uniform {s['start'][0]}.{s['start'][1]} " if s["start"] else "No uniform start within 0.1% was found; ")
    caption += f"over layers {', '.join(s['layers'])}; tolerances are relative to float accuracy."
    if judd:
        caption += f" Judd columns: their Table 2 for {net}."
    return Table(f"{run.name}: greedy per-layer precision", caption, columns, rows)


def bounds_table(run: RunResult) -> Table:
    s = run.summary
    rows = []
    for r in s["rows"]:
        sim = r.get("simulated_mismatch")
        holds = "–" if sim is None else ("yes" if r["theorem1"] >= sim else "no") + " / " + ("yes" if r["theorem2"] >= sim else "no")
        rows.append([str(r["b_a"]), str(r["b_w"]), _num(r["theorem1"]), _num(r["theorem2"]), _pct(sim) if sim is not None else "–", holds,
                     _pct(s["float_error"] + min(r["theorem2"], 1.0))])
    caption = (f"E_A = {s['e_a']:.4g}, E_W = {s['e_w']:.4g} from {s['estimation_examples']} examples; the precision rule gives "
               f"B_W − B_A = {s['rule_offset']}. Bounds hold when they are at least the simulated mismatch.")
    return Table(f"{run.name}: Sakr bounds", caption, ["B_A", "B_W", "Theorem 1", "Theorem 2", "simulated mismatch (%)",
                                                       "bound holds (T1 / T2)", "test error bound (%)"], rows)


def sensitivity_table(results: StudyResults, run: RunResult) -> Table:
    """The fewest bits per layer and quantity that keep 99% of float accuracy."""
    fa = results.float_accuracy
    rows = []
    for layer in run.summary["layers"]:
        row = [layer]
        for what in dict.fromkeys(p["labels"]["what"] for p in run.points):
            ok = [p["labels"]["bits"] for p in run.points if p["labels"]["layer"] == layer and p["labels"]["what"] == what and p["accuracy"] >= 0.99 * fa]
            row.append(str(min(ok)) if ok else "–")
        rows.append(row)
    whats = list(dict.fromkeys(p["labels"]["what"] for p in run.points))
    return Table(f"{run.name}: per-layer sensitivity", "Fewest bits that keep 99% of float accuracy, one layer at a time.", ["layer", *whats], rows)


def tables(results: StudyResults, compare: bool = True) -> list[Table]:
    """Every table of the report, in run order."""
    out = [overview(results)]
    for run in results.runs:
        if run.kind == "plans":
            table = plans_table(results, run, compare)
        elif run.kind == "sweep":
            table = sweep_table(results, run)
        elif run.kind == "greedy":
            table = greedy_table(results, run, compare)
        elif run.kind == "bounds":
            table = bounds_table(run)
        else:
            table = sensitivity_table(results, run)
        if run.summary.get("complete") is False:
            table.caption += f" Incomplete: the run stopped at its max_evaluations ({len(run.points)} points)."
        out.append(table)
    return out

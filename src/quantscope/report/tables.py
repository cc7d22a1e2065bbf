"""The report's tables: the study overview, then each run kind's own tables (with the papers'
published numbers beside ours where the study reproduces one of their tables)."""

from __future__ import annotations

from .format import Table, pct
from .results import StudyResults

__all__ = ["Table", "overview", "report_tables"]


def overview(results: StudyResults) -> Table:
    """What the study is: model, data, float accuracy, runs, points, how much was emulated."""
    cfg, info = results.config, results.info
    distinct = len({p["key"] for r in results.runs for p in r.points})
    rows = [
        ["study", results.name], ["model", cfg["model"].get("name") or cfg["model"].get("module")],
        ["dataset", f"{cfg['dataset']['name']} ({cfg['dataset']['eval_split']} split, {info['eval_examples']} examples)"],
        ["float accuracy", f"{pct(results.float_accuracy)} %"], ["checkpoint", info["checkpoint"]],
        ["runs", ", ".join(f"{r.name} ({r.kind}, {len(r.points)} points)" for r in results.runs)],
        ["distinct points (each evaluated once)", str(distinct)],
        ["operations emulated", info.get("emulation", "(not recorded: study written before op-level emulation)")],
    ]
    return Table("Study", cfg.get("description") or "", ["", ""], rows)


def report_tables(results: StudyResults, compare: bool = True) -> list[Table]:
    """Every table of the report: the overview, then each run's, in run order."""
    from ..study.runs import RUN_KINDS

    out = [overview(results)]
    for run in results.runs:
        for table in RUN_KINDS[run.kind].tables(results, run, compare):
            if not run.summary.complete:
                table.caption += f" Incomplete: the run stopped at its max_evaluations ({len(run.points)} points)."
            out.append(table)
    return out

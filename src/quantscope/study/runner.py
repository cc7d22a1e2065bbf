"""Running a study: data, float model, evaluators, then every run through the stored executor,
each run's summary stored when it finishes, and the report."""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import data
from ..emulation import OpTable, layers
from ..executors import InProcess
from ..files import write_atomic
from ..plan import PrecisionPlan
from ..results import study_info
from ..search.evaluate import Evaluator, Qat
from ..store import STORE_FILE, Store, content_key, points_in
from .config import StudyConfig, load_config
from .float_model import FloatModel, float_model, normalization
from .lock import folder_lock
from .runs import RUN_KINDS, RunConfig, RunContext
from .stored import StoredExecutor

__all__ = ["StudyResult", "run_study"]


@dataclass
class StudyResult:
    """Where a study's results are and what it cost."""

    out: Path
    store_path: Path
    evaluated: int
    reused: int
    seconds: float
    report: Path | None = None


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..progress import progress_bar

    return progress_bar(TextColumn("{task.description:24s}"), BarColumn(), MofNCompleteColumn(), TextColumn("running {task.fields[running]}"),
                        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), enabled=enabled)


def _datasets(cfg: StudyConfig, base: Path, data_dir: str | Path | None) -> tuple[data.Dataset, data.Dataset, Callable[[str], data.Dataset]]:
    """The training set, the evaluation set, and a loader of any split of the study's dataset."""
    d_dir = data_dir or (None if cfg.dataset.data_dir is None else base / cfg.dataset.data_dir)
    norm = normalization(cfg)

    @functools.lru_cache(maxsize=None)
    def split(name: str) -> data.Dataset:
        return data.load(cfg.dataset.name, name, d_dir, normalize=norm)

    eval_set = split(cfg.dataset.eval_split)
    return split("train"), eval_set.subset(slice(0, cfg.dataset.limit)) if cfg.dataset.limit else eval_set, split


def _context(cfg: StudyConfig, fm: FloatModel, train_set: data.Dataset, eval_set: data.Dataset, store: Store,
             split: Callable[[str], data.Dataset]) -> tuple[RunContext, OpTable]:
    """The evaluators (the QAT one made when a run first needs it) and the model's product ops."""
    calibration = train_set.tensors(limit=cfg.evaluation.calibration)[0]
    e = cfg.evaluation
    settings = dict(costs=e.costs, r2_inputs=e.r2_inputs, calibration=calibration, batch_size=e.batch_size, rounding=e.rounding, threads=e.threads,
                    seed=e.seed)
    evaluator = Evaluator(fm.model, eval_set, **settings)  # type: ignore[arg-type]
    made: list[Evaluator] = []

    def qat_evaluator() -> Evaluator:
        if not made:
            made.append(Evaluator(fm.model, eval_set, qat=Qat(train_set, cfg.qat.config()), **settings))  # type: ignore[arg-type]
        return made[0]

    table = layers(fm.model, calibration[:1])
    ops = [o.name for o in table if o.macs]
    return RunContext(cfg, fm.model, evaluator, qat_evaluator, ops, calibration, eval_set, store, split), table


def _write_info(out: Path, cfg: StudyConfig, fm: FloatModel, ctx: RunContext, table: OpTable) -> None:
    info = {"config": cfg.model_dump(mode="json"), "checkpoint": str(fm.checkpoint), "trained": fm.trained, "train_seconds": fm.seconds,
            "float_accuracy": ctx.evaluator.float_accuracy, "layers": ctx.layers, "macs_emulated": table.coverage,
            "emulation": table.coverage_note(), "eval_examples": len(ctx.eval_set)}
    write_atomic(out / "study.json", json.dumps(info, indent=1) + "\n")


def _run(ctx: RunContext, run: RunConfig, inner: Any, bar: Any, log: Callable[[str], None]) -> tuple[int, int]:
    """One run, unless it finished earlier with the same settings: (evaluated, reused)."""
    cfg, store = ctx.cfg, ctx.store
    version = RUN_KINDS[run.kind].version
    run_key = content_key(run.model_dump(mode="json"), ctx.evaluator.fingerprint, cfg.qat.model_dump() if run.qat else None,
                          *((version,) if version > 1 else ()))  # version 1 keeps the keys of runs stored before versions
    done = store.run_summary(cfg.name, run.name)
    if done is not None and done.get("config_key") == run_key:
        reused = len(store.members(cfg.name, run.name))
        log(f"run {run.name}: finished earlier, its {reused} points read from the store")
        return 0, reused
    ex = StoredExecutor(inner, store, bar, bar.add_task(f"{run.kind} {run.name}", total=0, running=0))
    t0 = time.perf_counter()
    outcome = RUN_KINDS[run.kind].execute(ctx, run, ex)
    summary = replace(outcome.summary, rounding=outcome.evaluator.rounding, config_key=run_key, seconds=time.perf_counter() - t0,
                      evaluated=ex.evaluated, reused=ex.reused)
    keys = [outcome.evaluator.point_key(p.plan) for p in outcome.points]
    store.finish_run(cfg.name, run.name, run.kind, summary.to_dict(), keys, [p.labels for p in outcome.points])
    log(f"run {run.name}: {len(outcome.points)} points ({ex.evaluated} evaluated, {ex.reused} from the store) in {summary.seconds:.1f} s")
    for warning in outcome.warnings:
        log(f"warning: run {run.name}: {warning}")
    return ex.evaluated, ex.reused


def _refresh_costs(ctx: RunContext, log: Callable[[str], None]) -> int:
    """Recompute the costs of the study's stored points when the cost models changed since they
    were stored (evaluations are kept: costs depend on the plan only); returns how many changed."""
    from ..cost import models_digest

    marker, digest = f"cost-models:{ctx.cfg.name}", models_digest()
    stored = ctx.store.get_artifact(marker)
    if stored is not None and stored.get("digest") == digest:
        return 0
    changed: dict[str, dict[str, Any]] = {}
    for key, record in ctx.store.get_many([row["key"] for row in ctx.store.members(ctx.cfg.name)]).items():
        costs = ctx.evaluator.costs_of(PrecisionPlan.from_dict(record["plan"]))
        if costs != record.get("costs"):
            changed[key] = {**record, "costs": costs}
    ctx.store.replace(changed)
    ctx.store.put_artifact(marker, {"digest": digest})
    if changed:
        log(f"costs of {len(changed)} stored points recomputed: the cost models changed since they were stored")
    return len(changed)


def _check_folder(out: Path, name: str) -> None:
    """A study folder holds one study: refuse a folder that another study wrote."""
    if (out / "study.json").is_file():
        other = study_info(out)["config"]["name"]
        if other != name:
            raise ValueError(f"{out} holds study {other!r}, not {name!r}: a folder holds one study; choose another --out")


def _run_all(cfg: StudyConfig, base: Path, out: Path, store: Store, executor: Any, data_dir: str | Path | None, progress: bool,
             log: Callable[[str], None]) -> list[tuple[int, int]]:
    """Data, float model, evaluators, study.json, then every run: (evaluated, reused) per run."""
    train_set, eval_set, split = _datasets(cfg, base, data_dir)
    fm = float_model(cfg, base, train_set, log)
    ctx, table = _context(cfg, fm, train_set, eval_set, store, split)
    for run in cfg.runs:
        run.check_ops(table)
    _write_info(out, cfg, fm, ctx, table)
    _refresh_costs(ctx, log)
    log(f"study {cfg.name}: float accuracy {ctx.evaluator.float_accuracy:.4f} on {len(eval_set)} {cfg.dataset.eval_split} examples")
    with _progress(progress) as bar:
        return [_run(ctx, run, executor, bar, log) for run in cfg.runs]


def run_study(
    config: str | Path | dict[str, Any] | StudyConfig,
    out: str | Path | None = None,
    executor: Any = None,
    resume: bool = False,
    data_dir: str | Path | None = None,
    progress: bool = True,
    report: bool = True,
    log: Callable[[str], None] = print,
) -> StudyResult:
    """Run a study: float model, every run's points (stored as they complete), summaries, report.

    A study whose store already holds finished runs is refused unless `resume` (then finished runs
    are read back and unfinished ones continue, reusing every stored point).
    """
    start = time.perf_counter()
    cfg, base = load_config(config)
    out = Path(out) if out is not None else Path("results") / cfg.name
    created = not out.exists()
    with folder_lock(out, cfg.name):
        try:
            _check_folder(out, cfg.name)
            with Store(out / STORE_FILE) as store:
                if store.runs(cfg.name) and not resume:
                    raise ValueError(f"{out} already holds results of study {cfg.name!r}; pass --resume to continue it "
                                     "(stored points are reused) or choose another --out")
                before = len(store)
                try:
                    counts = _run_all(cfg, base, out, store, executor or InProcess(), data_dir, progress, log)
                except KeyboardInterrupt:
                    raise KeyboardInterrupt(f"{len(store) - before} points stored in {out}; continue with --resume") from None
        except BaseException:
            if created and points_in(out / STORE_FILE) == 0:  # failed before any result: leave no folder behind
                shutil.rmtree(out, ignore_errors=True)
            raise
    result = StudyResult(out, store.path, sum(c[0] for c in counts), sum(c[1] for c in counts), time.perf_counter() - start)
    if report:
        from ..report import write_report

        result.report = write_report(out)
    return result

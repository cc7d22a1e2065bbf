"""Study throughput: points per minute of a uniform sweep on LeNet/MNIST with 1 and 2 workers,
and the result store's write throughput (one writer, and two writer processes at once).

    python benchmarks/study.py [--points 32] [--data-dir ../shared/datasets]

Each evaluation runs LeNet on the 1,000-image validation split with one torch thread (the
study default, so results do not depend on the executor). The 2-worker figure is a process pool;
its ratio against 1 worker is measured in the same run. The store figure is rows committed per
second, each row its own transaction (as a study writes them).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from quantscope.executors import InProcess, ProcessPool
from quantscope.store import Store
from quantscope.study import run_study

ROOT = Path(__file__).resolve().parents[1]


def sweep_config(points: int) -> dict:
    mantissas = list(range(1, 24))
    formats = [f"float<{e},{m}>" for e in (4, 5, 6, 7) for m in mantissas][:points]
    return {
        "name": "bench-sweep",
        "dataset": {"name": "mnist", "eval_split": "val"},
        "model": {"name": "lenet", "checkpoint": str(ROOT / "checkpoints" / "lenet-mnist.pt")},
        "evaluation": {"costs": ["traffic", "energy_uj", "mac_speedup"]},
        "runs": [{"name": "floats", "kind": "sweep", "formats": formats}],
    }


def points_per_minute(executor, points: int, data_dir: str, tmp: Path, tag: str) -> float:
    start = time.perf_counter()
    result = run_study(sweep_config(points), tmp / tag, executor, data_dir=data_dir, progress=False, report=False, log=lambda m: None)
    seconds = time.perf_counter() - start
    assert result.evaluated == points, result
    return 60 * points / seconds


def _write(path: Path, worker: int, rows: int) -> None:
    record = {"accuracy": 0.99, "mismatch": 0.01, "r2": 0.999, "costs": {"traffic": 0.25, "energy_uj": 8.4},
              "plan": {"default": {"weights": "fixed<8,auto>", "data": "fixed<8,auto>"}, "overrides": {}}}
    with Store(path) as s:
        for i in range(rows):
            s.put(f"{worker}-{i}", record, 0.1, f"w{worker}")


def store_rows_per_second(tmp: Path, writers: int, rows: int) -> float:
    path = tmp / f"store-{writers}.sqlite"
    Store(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write, args=(path, w, rows)) for w in range(writers)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return writers * rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        one = points_per_minute(InProcess(), args.points, args.data_dir, tmp, "one")
        pool = ProcessPool(2)
        try:
            two = points_per_minute(pool, args.points, args.data_dir, tmp, "two")
        finally:
            pool.close()
        print(f"sweep, LeNet/MNIST val (1,000 images), {args.points} points:")
        print(f"  1 worker  (in-process)   {one:7.1f} points/min")
        print(f"  2 workers (process pool) {two:7.1f} points/min   ratio {two / one:.2f}x (includes starting the pool)")
        w1 = store_rows_per_second(tmp, 1, args.rows)
        w2 = store_rows_per_second(tmp, 2, args.rows)
        print(f"store writes, one transaction per row: 1 writer {w1:,.0f} rows/s; 2 writers {w2:,.0f} rows/s together")


if __name__ == "__main__":
    main()

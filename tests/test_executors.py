"""Executors: the same results in order, whichever runs them; clear errors."""

import math
import subprocess
import sys
import time

import pytest

from quantscope.executors import InProcess, ProcessPool, make_executor


def test_inprocess_and_process_pool_agree_in_order():
    items = list(range(23))
    pool = ProcessPool(2)
    try:
        assert pool.map(math.factorial, items) == InProcess().map(math.factorial, items) == [math.factorial(i) for i in items]
        seen = sorted(i for i, _, _, _ in pool.imap_unordered(math.sqrt, items))
        assert seen == items
        workers = {w for _, _, _, w in pool.imap_unordered(math.sqrt, items)}
        assert all(w.startswith("pid") for w in workers)
    finally:
        pool.close()


def test_process_pool_keeps_its_workers_for_the_same_function():
    pool = ProcessPool(1)
    try:
        pool.map(abs, [1])
        first = pool._pool
        pool.map(abs, [2, 3])
        assert pool._pool is first
        pool.map(math.sqrt, [4])
        assert pool._pool is not first
    finally:
        pool.close()


def test_make_executor_errors():
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        make_executor("threads")
    with pytest.raises(ValueError, match="workers=3"):
        make_executor("inprocess", 3)
    with pytest.raises(ValueError, match="at least 1"):
        ProcessPool(0)
    assert isinstance(make_executor("process", 2), ProcessPool)


def test_a_worker_started_after_its_study_died_exits():
    """A spawned worker can still be importing when the study is SIGKILLed; its initializer then
    runs orphaned and must exit, not watch whatever process adopted it."""
    code = ("import sys, time; from quantscope.executors import _install; "
            "_install(abs, int(sys.argv[1])); time.sleep(20); sys.exit(0)")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    start = time.monotonic()
    worker = subprocess.run([sys.executable, "-c", code, gone.stdout.strip()], capture_output=True, text=True, timeout=60)
    assert worker.returncode == 1 and not worker.stderr and time.monotonic() - start < 15, (worker.returncode, worker.stderr)

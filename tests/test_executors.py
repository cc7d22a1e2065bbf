"""Executors: the same results in order, whichever runs them; clear errors."""

import math

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

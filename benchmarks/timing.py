"""Timing helper shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of `repeats` runs after one warm-up, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def median_ratio(fn: Callable[[], object], baseline: Callable[[], object], pairs: int) -> float:
    """Median over `pairs` back-to-back runs of time(fn) / time(baseline), after one warm-up of
    each: robust to the machine's load changing during the measurement."""
    fn(), baseline()
    ratios = []
    for _ in range(pairs):
        start = time.perf_counter()
        baseline()
        middle = time.perf_counter()
        fn()
        ratios.append((time.perf_counter() - middle) / (middle - start))
    return statistics.median(ratios)

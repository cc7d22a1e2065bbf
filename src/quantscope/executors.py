"""Where points are evaluated: in this process, in a local process pool, or on a Ray cluster.

Every executor runs a picklable function (an `Evaluator`) over items and yields
`(index, result, seconds, worker)` as results complete (`imap_unordered`), or returns results in
order (`map`). Pools ship the function to each worker once and keep it while the same function is
used, so a greedy search's many small batches do not pay for it again. Results do not depend on the
executor: the evaluator fixes its own thread count for every point.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

__all__ = ["InProcess", "ProcessPool", "RayExecutor", "WorkerDied", "make_executor", "EXECUTORS", "RAY_CONNECT_TIMEOUT"]

EXECUTORS = ("inprocess", "process", "ray")

_WORKER_FN: Callable[[Any], Any] | None = None


def _timed(fn: Callable[[Any], Any], index: int, item: Any) -> tuple[int, Any, float, str]:
    start = time.perf_counter()
    result = fn(item)
    return index, result, time.perf_counter() - start, f"pid{os.getpid()}"


def _exit_when_orphaned(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _install(fn: Callable[[Any], Any], parent: int) -> None:
    """A pool worker's start: keep the function, and exit as soon as the study process `parent`
    is gone (a SIGKILLed parent runs no clean-up, so its workers must notice themselves). The
    parent's pid comes from the parent: a worker still importing when the study died would
    otherwise take the process that adopted it for its parent."""
    global _WORKER_FN
    _WORKER_FN = fn
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="parent-watch").start()


def _call_installed(index: int, item: Any) -> tuple[int, Any, float, str]:
    assert _WORKER_FN is not None, "worker started without a function"
    return _timed(_WORKER_FN, index, item)


class InProcess:
    """Evaluate one item after another in this process."""

    workers = 1

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any, float, str]]:
        for i, item in enumerate(items):
            yield _timed(fn, i, item)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return _ordered(self, fn, items)

    def close(self) -> None:
        """Nothing to release."""


def _ordered(executor: Any, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    items = list(items)
    out: list[Any] = [None] * len(items)
    for i, result, _, _ in executor.imap_unordered(fn, items):
        out[i] = result
    return out


class ProcessPool:
    """A pool of `workers` local processes (spawned, so no forked thread state)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._fn: Callable[[Any], Any] | None = None

    def _pool_for(self, fn: Callable[[Any], Any]) -> ProcessPoolExecutor:
        if self._pool is None or fn is not self._fn:
            self.close()
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=_install,
                                             initargs=(fn, os.getpid()))
            self._fn = fn
        return self._pool

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any, float, str]]:
        pool = self._pool_for(fn)
        pending: set[Future] = {pool.submit(_call_installed, i, item) for i, item in enumerate(items)}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield _result(fut)
        finally:
            if pending:  # left early (interrupted, or an error): stop the points still running
                self._terminate()

    def _terminate(self) -> None:
        """Kill the workers now instead of waiting for the points they are running."""
        if self._pool is None:
            return
        processes = list(getattr(self._pool, "_processes", {}).values())  # no public handle before Python 3.14
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.terminate()
        for p in processes:
            p.join(5)
        self._pool = None
        self._fn = None

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return _ordered(self, fn, items)

    def close(self) -> None:
        """Shut the worker processes down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._fn = None


def _result(fut: Future) -> Any:
    try:
        return fut.result()
    except BrokenProcessPool:
        raise WorkerDied("a worker process died (killed, or out of memory); the points stored so far are kept: "
                         "continue with --resume") from None


class WorkerDied(RuntimeError):
    """A pool worker or Ray actor died while evaluating a point (not a fault of the point)."""


class _RayWorker:
    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def run(self, index: int, item: Any) -> tuple[int, Any, float, str]:
        return _timed(self.fn, index, item)


#: seconds to wait for a Ray cluster to answer before giving up (--connect-timeout)
RAY_CONNECT_TIMEOUT = 60.0


def _connect(ray: Any, address: str, timeout: float) -> None:
    """`ray.init(address)`, failing with one clear error when nothing answers within `timeout`
    seconds (Ray itself retries for many minutes)."""
    hint = (" (a ray:// address needs Ray's client: pip install 'ray[client]'; a cluster with token authentication needs "
            "RAY_AUTH_MODE=token and its token, e.g. ~/.ray/auth_token)")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=min(timeout, 10)).close()
        except OSError as err:
            raise ValueError(f"cannot reach the Ray cluster at {address!r}: {err}") from None
    failure: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except BaseException as err:  # noqa: BLE001 - handed to the caller below
            failure.append(err)

    thread = threading.Thread(target=init, daemon=True, name="ray-connect")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ValueError(f"no answer from the Ray cluster at {address!r} within {timeout:g} s (--connect-timeout); is it a Ray head?{hint}")
    if failure:
        raise ValueError(f"cannot connect to the Ray cluster at {address!r}: {failure[0]}{hint}") from None


class RayExecutor:
    """Ray actors holding the function: a local Ray instance with `workers` CPUs, or the cluster
    at `address` (all its CPUs unless `workers` says fewer)."""

    def __init__(self, workers: int | None = None, address: str | None = None, connect_timeout: float = RAY_CONNECT_TIMEOUT) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("the ray executor needs Ray: pip install 'quantscope[ray]'") from None
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if connect_timeout <= 0:
            raise ValueError(f"the Ray connect timeout must be positive, got {connect_timeout}")
        self._ray = ray
        if not ray.is_initialized():
            if address:
                _connect(ray, address, connect_timeout)
            else:
                # "local": a cluster of our own, never one another program left running on this machine
                ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actors: list[Any] = []
        self._fn: Callable[[Any], Any] | None = None

    def _actors_for(self, fn: Callable[[Any], Any]) -> list[Any]:
        if fn is not self._fn:
            self._kill()
            remote = self._ray.remote(num_cpus=1)(_RayWorker)
            ref = self._ray.put(fn)
            self._actors = [remote.remote(ref) for _ in range(self.workers)]
            self._fn = fn
        return self._actors

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any, float, str]]:
        actors = self._actors_for(fn)
        queue = list(enumerate(items))[::-1]
        running: dict[Any, Any] = {}
        idle = list(actors)
        while queue or running:
            while queue and idle:
                actor = idle.pop()
                i, item = queue.pop()
                running[actor.run.remote(i, item)] = actor
            done, _ = self._ray.wait(list(running), num_returns=1)
            for ref in done:
                idle.append(running.pop(ref))
                try:
                    result = self._ray.get(ref)
                except self._ray.exceptions.RayActorError:
                    raise WorkerDied("a Ray actor died (its node was lost, killed, or out of memory); the points stored so far are "
                                     "kept: continue with --resume") from None
                yield result

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return _ordered(self, fn, items)

    def _kill(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        self._fn = None

    def close(self) -> None:
        """Release the actors (the Ray instance stays up for the process)."""
        self._kill()


def make_executor(kind: str = "inprocess", workers: int | None = None, address: str | None = None,
                  connect_timeout: float = RAY_CONNECT_TIMEOUT) -> InProcess | ProcessPool | RayExecutor:
    """An executor by name: "inprocess", "process" (needs `workers`) or "ray"."""
    if kind == "inprocess":
        if workers not in (None, 1):
            raise ValueError(f"the inprocess executor runs one point at a time; got workers={workers} (use --executor process)")
        return InProcess()
    if kind == "process":
        return ProcessPool(workers or os.cpu_count() or 1)
    if kind == "ray":
        return RayExecutor(workers, address, connect_timeout)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")

"""The stored executor: plans already in the result store are read back, the rest run on an
inner executor and each result is written the moment it arrives."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..plan import PrecisionPlan
from ..search.evaluate import Evaluator, Point
from ..store import Store

__all__ = ["StoredExecutor"]


class StoredExecutor:
    """An executor adapter for one evaluator (see the module docstring); a progress bar counts
    done, running and left with a time estimate."""

    def __init__(self, inner: Any, store: Store, progress: Any, task: Any) -> None:
        self.inner, self.store, self.progress, self.task = inner, store, progress, task
        self.evaluated = 0
        self.reused = 0
        self.total = 0

    def map(self, fn: Evaluator, plans: Iterable[PrecisionPlan]) -> list[Point]:
        """Points of `plans`, in order: stored ones read, the others evaluated and stored."""
        plans = list(plans)
        keys = [fn.point_key(p) for p in plans]
        found = self.store.get_many(keys)
        todo = {k: p for k, p in zip(keys, plans) if k not in found}
        unique = len(set(keys))
        self.reused += unique - len(todo)
        self.total += unique
        self._update(total=self.total, advance=unique - len(todo))
        order = list(todo)
        left = len(order)
        self._running(left)
        for i, point, seconds, worker in self.inner.imap_unordered(fn, [todo[k] for k in order]):
            record = point.to_dict()
            record.pop("labels")
            self.store.put(order[i], record, seconds, worker)
            found[order[i]] = record
            self.evaluated += 1
            left -= 1
            self._update(advance=1)
            self._running(left)
        return [Point.from_dict(found[k]) for k in keys]

    def _update(self, **fields: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, **fields)

    def _running(self, left: int) -> None:
        self._update(running=min(left, getattr(self.inner, "workers", 1)))

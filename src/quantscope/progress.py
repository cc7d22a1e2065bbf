"""Progress display of long work (training, studies): a live bar on a terminal and, where output
goes to a file (a run under nohup, a CI log), every unfinished task's line at a fixed interval, so
that a log shows how far a run of hours has come."""

from __future__ import annotations

from typing import Any

from rich.progress import Progress, ProgressColumn, TaskID

__all__ = ["progress_bar"]


class _Progress(Progress):
    """rich's Progress, printing its unfinished tasks' lines every `every` seconds off a terminal
    (rich itself shows a file only the final state)."""

    def __init__(self, *columns: str | ProgressColumn, every: float, **options: Any) -> None:
        super().__init__(*columns, **options)
        self._every = every
        self._printed = self.get_time()

    def update(self, task_id: TaskID, **changes: Any) -> None:
        super().update(task_id, **changes)
        self._log_lines()

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log_lines()

    def _log_lines(self) -> None:
        now = self.get_time()
        if self.disable or self.console.is_terminal or now - self._printed < self._every:
            return
        self._printed = now
        unfinished = [t for t in self.tasks if not t.finished]
        if unfinished:
            self.console.print(self.make_tasks_table(unfinished))


def progress_bar(*columns: str | ProgressColumn, enabled: bool = True, transient: bool = False, every: float = 60.0,
                 speed_estimate_period: float = 600.0, **options: Any) -> Progress:
    """A rich progress display that also reports to log files: every `every` seconds when not on a
    terminal. The time left is estimated from the last `speed_estimate_period` seconds (long, as
    one step of a study or an epoch can take minutes)."""
    return _Progress(*columns, every=every, disable=not enabled, transient=transient, speed_estimate_period=speed_estimate_period,
                     **options)

"""Progress of long work reaches a log file: rich alone shows a file only the final state."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TextColumn

from quantscope.progress import progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _console(terminal: bool = False) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100), out


def _work(bar: Progress, clock: Clock) -> list[str]:
    """Two tasks advanced once every 25 (fake) seconds; the log's text after each step."""
    seen = []
    with bar:
        a = bar.add_task("greedy", total=10)
        b = bar.add_task("bounds", total=2)
        bar.update(b, completed=2)
        for _ in range(6):
            clock.now += 25
            bar.advance(a)
            seen.append(bar.console.file.getvalue())  # type: ignore[attr-defined]
    return seen


def test_a_log_file_gets_the_unfinished_tasks_lines_every_interval() -> None:
    console, _ = _console()
    clock = Clock()
    seen = _work(progress_bar(TextColumn("{task.description}"), MofNCompleteColumn(), every=60, console=console, get_time=clock), clock)
    assert seen[0] == seen[1] == ""  # 25 and 50 s: under the interval
    assert seen[2].split() == ["greedy", "3/10"]  # 75 s; the finished task is not repeated
    assert seen[3] == seen[4] == seen[2]  # 100 and 125 s: under the interval since the last line
    assert seen[5].split() == ["greedy", "3/10", "greedy", "6/10"]  # 150 s


def test_rich_alone_writes_a_log_file_nothing_until_the_end() -> None:
    console, out = _console()
    clock = Clock()
    seen = _work(Progress(TextColumn("{task.description}"), MofNCompleteColumn(), console=console, get_time=clock), clock)
    assert seen[-1] == ""
    assert out.getvalue().split() == ["greedy", "6/10", "bounds", "2/2"]


def test_a_disabled_display_or_a_terminal_gets_no_log_lines() -> None:
    for enabled, terminal in ((False, False), (True, True)):
        console, _ = _console(terminal)
        clock = Clock()
        seen = _work(progress_bar(TextColumn("{task.description}"), MofNCompleteColumn(), enabled=enabled, every=60, console=console,
                                  get_time=clock, auto_refresh=False), clock)
        assert "3/10" not in seen[-1]  # a terminal's live bar (not refreshed here) draws only its first state
        assert (seen[-1] == "") == (not enabled)

"""Live progress of a run in the terminal: a line per step as it starts and ends, a bar per table in apply.

The display writes to its own copy of the terminal's file descriptor: while a step runs, Dagster points
stdout and stderr at the step's compute-log files, and whatever the display drew there would reach the
terminal only late (and fill the logs with cursor movements). Without a terminal (cron, CI, a pipe) it
prints plain lines instead: each step's end, and each table's rows at most every tenth of the way.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from pipelines.progress import Listener
from pipelines.progress import Progress as Event

ENDS = {"success": "[green]done[/]", "failure": "[bold red]failed[/]", "skipped": "[yellow]skipped[/]"}


@contextmanager
def _own_console(console: Console) -> Iterator[Console]:
    """A console on a copy of the console's file descriptor; the console itself when its file has none (a
    test's captured output), which Dagster does not redirect either."""
    try:
        fd = console.file.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        yield console
        return
    with os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8") as stream:
        yield Console(file=stream, force_terminal=console.is_terminal, no_color=console.no_color, width=console.width)


@contextmanager
def live_progress(console: Console, title: str) -> Iterator[Listener]:
    """A listener for `pipelines.progress.watching` that draws on the console's terminal while the block runs."""
    with _own_console(console) as out:
        if out.is_terminal:
            with _bars(out, title) as listener:
                yield listener
        else:
            out.print(f"{title} …", highlight=False)
            yield _Lines(out)


@contextmanager
def _bars(out: Console, title: str) -> Iterator[Listener]:
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=out, transient=False) as bars:
        overall = bars.add_task(title, total=None)
        tasks: dict[str, TaskID] = {}
        lock = threading.Lock()

        def listen(event: Event) -> None:
            with lock:
                if event.kind == "start":
                    tasks[event.step] = bars.add_task(event.step, total=None)
                elif event.kind in ENDS and event.step in tasks:
                    task = tasks[event.step]
                    bars.update(task, total=1, completed=1, description=f"{event.step} {ENDS[event.kind]}")
                    bars.stop_task(task)
                    bars.advance(overall)
                elif event.kind == "rows":
                    name = f"{event.step}: {event.text}"
                    if name not in tasks:
                        tasks[name] = bars.add_task(f"  {event.text}", total=event.total)
                    bars.update(tasks[name], total=event.total, completed=event.done)
                    if event.done >= event.total:
                        bars.stop_task(tasks[name])
                elif event.kind == "note" and event.step in tasks:
                    bars.update(tasks[event.step], description=f"{event.step}: {event.text[:60]}")

        try:
            yield listen
        finally:
            bars.update(overall, total=len(tasks) or 1, completed=len(tasks) or 1)


class _Lines:
    """Plain progress lines, for logs: no cursor movement, nothing repeated."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.started: dict[str, float] = {}
        self.shown: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            if event.kind == "start":
                self.started[event.step] = time.monotonic()
            elif event.kind in ENDS:
                seconds = time.monotonic() - self.started.get(event.step, time.monotonic())
                self.out.print(f"  {event.step}: {ENDS[event.kind]} ({seconds:.1f} s)", highlight=False)
            elif event.kind == "rows" and event.total:
                name = f"{event.step}: {event.text}"
                tenth = event.done * 10 // event.total
                if tenth > self.shown.get(name, -1):
                    self.shown[name] = tenth
                    self.out.print(f"  {name}: {event.done:,} of {event.total:,} rows", highlight=False)

"""Live progress of a run, read from the instance's event log while the run goes on.

The event log is where every step process writes, whichever executor runs the steps (in-process, one process
per step, another machine), so a watcher reading it sees what the Dagster UI sees: step starts and ends, and
the apply steps' progress messages (`progress_message`, table names and counts only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

PROGRESS_PREFIX = "progress|"

STEP_EVENTS = {
    dg.DagsterEventType.STEP_START.value: "start",
    dg.DagsterEventType.STEP_SUCCESS.value: "success",
    dg.DagsterEventType.STEP_FAILURE.value: "failure",
    dg.DagsterEventType.STEP_SKIPPED.value: "skipped",
}


@dataclass(frozen=True)
class Progress:
    """One thing a watcher learnt: a step `start`ed or ended (`success`, `failure`, `skipped`), a table's
    `rows` advanced (done of total), or a step said something (`note`)."""

    kind: str
    step: str
    text: str = ""
    done: int = 0
    total: int = 0


Listener = Callable[[Progress], None]


def progress_message(table: str, done: int, total: int) -> str:
    return f"{PROGRESS_PREFIX}{table}|{done}|{total}"


def _progress(entry: dg.EventLogEntry) -> Progress | None:
    step = entry.step_key or ""
    event = entry.dagster_event
    if event is not None:
        kind = STEP_EVENTS.get(event.event_type_value)
        return Progress(kind, step) if kind else None
    message = entry.user_message or ""
    if message.startswith(PROGRESS_PREFIX):
        table, done, total = message[len(PROGRESS_PREFIX) :].rsplit("|", 2)
        return Progress("rows", step, table, int(done), int(total))
    return Progress("note", step, message) if message and step else None


@contextmanager
def watching(instance: dg.DagsterInstance, run_id: str, listener: Listener, every: float = 1.0) -> Iterator[None]:
    """Call `listener` for each step event and progress message of the run, from a thread that polls the event
    log, until the block ends (then once more, so nothing the run wrote last is missed)."""
    stop = threading.Event()
    cursor: str | None = None

    def poll() -> None:
        nonlocal cursor
        while True:
            result = instance.get_records_for_run(run_id, cursor=cursor, limit=500)
            cursor = result.cursor
            for record in result.records:
                found = _progress(record.event_log_entry)
                if found is not None:
                    listener(found)
            if not result.has_more:
                return

    def loop() -> None:
        while not stop.wait(every):
            try:
                poll()
            except sa.exc.OperationalError:  # storage busy with the run's own writes: read at the next tick
                continue

    thread = threading.Thread(target=loop, name=f"progress-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()

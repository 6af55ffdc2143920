"""A Dagster logger that forwards step events and apply progress to whoever listens (the terminal display).

In the Dagster UI nobody listens and the logger does nothing; `retention run` listens and draws progress.
"""

import logging
from collections.abc import Callable

import dagster as dg

PROGRESS_PREFIX = "progress|"

Listener = Callable[[str, str, int, int], None]  # (kind, step or table, done, total)
_listeners: list[Listener] = []


def listen(listener: Listener) -> Callable[[], None]:
    """Register a listener; returns the function that removes it again."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def progress_message(table: str, done: int, total: int) -> str:
    return f"{PROGRESS_PREFIX}{table}|{done}|{total}"


class _Forward(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if not _listeners:
            return
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        message = str(meta.get("orig_message") or "")
        if event is not None and event.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            for listener in list(_listeners):
                listener(event.event_type_value, step, 0, 0)
        elif message.startswith(PROGRESS_PREFIX):
            table, done, total = message[len(PROGRESS_PREFIX) :].split("|")
            for listener in list(_listeners):
                listener("PROGRESS", f"{step}: {table}", int(done), int(total))


@dg.logger(
    config_schema=None, description="Forwards step starts, ends and apply progress to a terminal progress display."
)
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("retention-progress", level=logging.DEBUG)
    logger.addHandler(_Forward())
    return logger

"""Named points where a test may stop the process (the kill-and-resume tests); nothing happens otherwise.

A test installs a hook (`install`) before the run starts; a writer process started afterwards is given it
(`installed`), so a hook must pickle: a module-level function or an instance of a module-level class.
Without one, `fault` costs one check, so the points may sit in the batch loop.
"""

from __future__ import annotations

from collections.abc import Callable

Hook = Callable[[str, int], None]
"""(phase, batch number) -> None; it may kill the process there."""

_hook: Hook | None = None


def install(hook: Hook | None) -> None:
    """Call `hook` at every named point from now on (None: nothing happens there again)."""
    global _hook
    _hook = hook


def installed() -> Hook | None:
    """The hook installed now, if any."""
    return _hook


def fault(phase: str, batch_number: int) -> None:
    """A named point: the installed hook, if any, sees it."""
    if _hook is not None:
        _hook(phase, batch_number)

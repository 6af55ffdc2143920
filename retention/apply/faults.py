"""Named points where a test may stop the process (the kill-and-resume tests); nothing happens otherwise."""

from __future__ import annotations

import os
import signal

FAULT_ENV = "RETENTION_FAULT"  # test hook: "<phase>:<batch number>" kills the process with SIGKILL there


def fault(phase: str, batch_number: int) -> None:
    """Kill this process at a named point, for the kill-and-resume tests."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == f"{phase}:{batch_number}":
        os.kill(os.getpid(), signal.SIGKILL)

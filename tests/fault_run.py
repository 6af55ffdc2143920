"""`python -m tests.fault_run PHASE:N ARGS...`: the `retention` command with ARGS, killed with SIGKILL at the
named point (`retention.apply.faults`: the apply step's batch N, a snapshot of source N, the plan, a request
before its receipt), for the kill-and-resume tests. The point "writer:N" kills the forked ledger writer
process, which inherits the hook.

`wait:PHASE:N` pauses there instead, for the tests of runs that overlap: the process creates the file
`reached` in the folder FAULT_DIR names and goes on once the test has created `go` there."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from cli.app import app
from retention.apply import faults


def kill_at(point: str) -> faults.Hook:
    """A hook that kills the process it runs in at `point` ("phase:batch number")."""

    def hook(phase: str, batch_number: int) -> None:
        if f"{phase}:{batch_number}" == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def wait_at(point: str, folder: Path) -> faults.Hook:
    """A hook that pauses the process at `point` until the test lets it go (two minutes at most)."""

    def hook(phase: str, batch_number: int) -> None:
        if f"{phase}:{batch_number}" == point:
            (folder / "reached").touch()
            give_up = time.monotonic() + 120
            while not (folder / "go").exists() and time.monotonic() < give_up:
                time.sleep(0.05)

    return hook


def main(argv: list[str]) -> None:
    point, *args = argv
    if point.startswith("wait:"):
        faults.install(wait_at(point.removeprefix("wait:"), Path(os.environ["FAULT_DIR"])))
    else:
        faults.install(kill_at(point))
    app(args, prog_name="retention")


if __name__ == "__main__":
    main(sys.argv[1:])

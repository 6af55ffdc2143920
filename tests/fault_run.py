"""`python -m tests.fault_run PHASE:N ARGS...`: the `retention` command with ARGS, killed with SIGKILL at the
named point (`retention.apply.faults`: the apply step's batch N, a snapshot of source N, the plan, a request
before its receipt), for the kill-and-resume tests. The point "writer:N" kills the ledger writer process,
which is given the hook (so the hooks are instances of module-level classes: they pickle).

`wait:PHASE:N` pauses there instead, for the tests of runs that overlap: the process creates the file
`reached` in the folder FAULT_DIR names and goes on once the test has created `go` there."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cli.app import app
from retention.apply import faults


@dataclass(frozen=True)
class KillAt:
    """A hook that kills the process it runs in at `point` ("phase:batch number")."""

    point: str

    def __call__(self, phase: str, batch_number: int) -> None:
        if f"{phase}:{batch_number}" == self.point:
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class WaitAt:
    """A hook that pauses the process at `point` until the test lets it go (two minutes at most)."""

    point: str
    folder: Path

    def __call__(self, phase: str, batch_number: int) -> None:
        if f"{phase}:{batch_number}" == self.point:
            (self.folder / "reached").touch()
            give_up = time.monotonic() + 120
            while not (self.folder / "go").exists() and time.monotonic() < give_up:
                time.sleep(0.05)


def main(argv: list[str]) -> None:
    point, *args = argv
    if point.startswith("wait:"):
        faults.install(WaitAt(point.removeprefix("wait:"), Path(os.environ["FAULT_DIR"])))
    else:
        faults.install(KillAt(point))
    app(args, prog_name="retention")


if __name__ == "__main__":
    # the hooks must be those of the module by its name, which a writer process can import; not __main__'s
    from tests.fault_run import main as named_main

    named_main(sys.argv[1:])

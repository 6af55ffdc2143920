"""`python -m tests.fault_run PHASE:N ARGS...`: the `retention` command with ARGS, killed with SIGKILL at the
named point of the apply step (`retention.apply.faults`) in batch N, for the kill-and-resume tests. The point
"writer:N" kills the forked ledger writer process, which inherits the hook."""

from __future__ import annotations

import os
import signal
import sys

from cli.app import app
from retention.apply import faults


def kill_at(point: str) -> faults.Hook:
    """A hook that kills the process it runs in at `point` ("phase:batch number")."""

    def hook(phase: str, batch_number: int) -> None:
        if f"{phase}:{batch_number}" == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(argv: list[str]) -> None:
    point, *args = argv
    faults.install(kill_at(point))
    app(args, prog_name="retention")


if __name__ == "__main__":
    main(sys.argv[1:])

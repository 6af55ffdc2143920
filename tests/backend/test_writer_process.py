"""The ledger writer process is never a fork of the run's process: a run's process has threads (Dagster's, the
leases' heartbeat), a fork would copy the locks they hold, and Python 3.12 and later warn of it. Writers are
forks of a single-threaded zygote instead. What they write and checksum is what the inline ledger would
(`test_apply_verification.py`)."""

from __future__ import annotations

import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from retention.apply import faults, writer_process
from tests.backend.test_apply_verification import build, problems_after
from tests.databases import server_databases

_events: list[tuple[str, tuple]] | None = None
"""The process-starting audit events while a test records them."""


def _audit(event: str, args: tuple) -> None:
    if _events is not None and event in ("os.fork", "os.forkpty", "subprocess.Popen"):
        _events.append((event, args))


sys.addaudithook(_audit)  # an audit hook stays for the process's life: it records only while `_events` is a list


@dataclass(frozen=True)
class NoteWriter:
    """A fault hook that notes, at the writer's first batch, which process wrote it and that process's parent."""

    file: Path

    def __call__(self, phase: str, batch_number: int) -> None:
        if phase == "writer" and batch_number == 1:
            self.file.write_text(f"{os.getpid()} {os.getppid()}")


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def zygotes() -> list[int]:
    """This process's children that run the zygote."""
    children = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    return [pid for pid in children if writer_process.ZYGOTE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_the_writer_is_a_fork_of_a_single_threaded_zygote_not_of_the_run(tmp_path: Path) -> None:
    global _events
    noted = tmp_path / "writer"
    with server_databases("sqlite", tmp_path) as databases:
        shop = build(databases, tmp_path)
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)  # the run's process has other threads, as under Dagster
        other.start()
        _events = []
        faults.install(NoteWriter(noted))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert problems_after(shop, None) == []  # applied, ledger written, held rows checksummed
        finally:
            faults.install(None)
            events, _events = _events, None
            stop.set()
            other.join()
    assert [event for event, _ in events if event != "subprocess.Popen"] == []  # this process forked nothing
    started = [list(args[1])[:3] for event, args in events if event == "subprocess.Popen"]
    assert started in ([], [[sys.executable, "-c", writer_process.ZYGOTE]])  # the zygote, unless running already
    (zygote,) = zygotes()
    assert threads(zygote) == 1, "the zygote must fork alone"
    writer, parent = map(int, noted.read_text().split())
    assert writer not in (os.getpid(), zygote) and parent == zygote
    assert [str(w.message) for w in caught if "fork" in str(w.message)] == []

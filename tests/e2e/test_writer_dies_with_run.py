"""A daily run killed while its ledger writer process is busy takes the writer with it: the writer is a fork
of the run's zygote, not of the run, yet it still ends with the run, so it never writes for a dead run.

The writer pauses at its third batch (`tests.fault_run`, `wait:writer:3`); the run waits for it. The run is
killed; the zygote and the writer must be gone before the test lets the pause end, and the ledger must hold
no more batches than it did when the run died.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from retention.apply import writer_process
from retention.storage.schema import ledger_batches
from tests.databases import server_databases
from tests.e2e.test_kill_resume import make_estate, run


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def batch_count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ledger_batches)).scalar_one()
    finally:
        engine.dispose()


def test_a_killed_run_takes_its_busy_writer_process_with_it(tmp_path: Path) -> None:
    signals = tmp_path / "signals"
    signals.mkdir()
    with server_databases("sqlite", tmp_path) as databases:
        env = make_estate(databases, tmp_path, "wri") | {"FAULT_DIR": str(signals)}
        process = run(env, "wait:writer:3")
        try:
            give_up = time.monotonic() + 300
            while not (signals / "reached").exists():
                assert process.poll() is None, process.communicate()[0].decode()
                assert time.monotonic() < give_up, "the writer never reached its third batch"
                time.sleep(0.05)
            ours = [pid for pid in descendants(process.pid) if writer_process.ZYGOTE in command_line(pid)]
            assert len(ours) == 2, [command_line(pid) for pid in descendants(process.pid)]  # zygote and writer
            before = batch_count(env["RETENTION_CONTROL_URL"])
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            give_up = time.monotonic() + 60
            while any(map(alive, ours)) and time.monotonic() < give_up:
                time.sleep(0.05)
            assert not any(map(alive, ours)), "the writer process outlived its run"
        finally:
            (signals / "go").touch()
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.communicate()
        assert batch_count(env["RETENTION_CONTROL_URL"]) == before == 2

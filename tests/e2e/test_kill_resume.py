"""A run killed with SIGKILL during apply, at several points, leaves no half-done batch; the next run finishes.
So does a run whose ledger writer process is killed: the run stops with an error instead.

Two identical estates are made; one is run once, the other is killed mid-apply and then run again. The
databases and the ledger (without run ids and times) must then be equal.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.demo.generator import generate_demo_estate
from retention.reporting.alerts import KILLED_RUN
from retention.storage.leases import DAILY
from retention.storage.schema import failure_alerts, ledger
from tests.databases import ServerDatabases, server_databases
from tests.support import table_digests, wait_for_leases_to_expire

LEASE_SECONDS = 3
"""Short, so that a killed run's lease expires soon; a check that the lease refuses a run while it lives uses
REFUSING_LEASE_SECONDS, long enough for a process to start on a loaded machine."""
REFUSING_LEASE_SECONDS = 15
ANCHOR = dt.date(2026, 3, 1)
DAY = ANCHOR
ROOT = Path(__file__).resolve().parents[2]
SECRET = base64.b64encode(b"kill and resume test key ......!").decode()
LEDGER_FIELDS = [
    "as_of",
    "rule",
    "purpose",
    "legal_basis",
    "source",
    "table_name",
    "pk",
    "subject",
    "action",
    "fields",
    "key_id",
    "status",
]


def make_estate(
    databases: ServerDatabases, tmp_path: Path, name: str, lease_seconds: int = LEASE_SECONDS
) -> dict[str, str]:
    urls = {source: databases.new_url(f"{name[:3]}{source[:4]}") for source in ("enrolment", "newsletter", "elearning")}
    generate_demo_estate(urls, people=80, seed=5, anchor=ANCHOR)
    env = {f"RETENTION_{source.upper()}_URL": url for source, url in urls.items()}
    env |= {
        "RETENTION_CONTROL_URL": databases.new_url(f"{name[:3]}ctl"),
        "RETENTION_KEY": f"k1:{SECRET}",
        "RETENTION_VAR": str(tmp_path / name),
        "DAGSTER_HOME": str(tmp_path / name / "dagster"),
        "RETENTION_BATCH_ROWS": "30",
        "RETENTION_LEASE_SECONDS": str(lease_seconds),
    }
    return env


def run(env: dict[str, str], fault: str | None = None) -> subprocess.Popen:
    """The daily run as the `retention` command does it; with `fault` ("phase:batch"), through the test's own
    entry point, which kills it there (`tests.fault_run`)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")} | env
    entry = ["-m", "tests.fault_run", fault] if fault else ["-m", "cli"]
    command = [sys.executable, *entry, "run", "--as-of", DAY.isoformat(), "--confirm-large-plan"]
    return subprocess.Popen(command, cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def ledger_rows(env: dict[str, str]) -> list[tuple]:
    engine = sa.create_engine(env["RETENTION_CONTROL_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(*(ledger.c[f] for f in LEDGER_FIELDS))).all()
    finally:
        engine.dispose()
    return sorted(tuple(r) for r in rows)


def ledger_count(env: dict[str, str]) -> int:
    engine = sa.create_engine(env["RETENTION_CONTROL_URL"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one()
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def estate_state(env: dict[str, str]) -> dict[str, dict[str, str]]:
    digests = {}
    for source in ("enrolment", "newsletter", "elearning"):
        tables = table_digests(env[f"RETENTION_{source.upper()}_URL"])
        tables.pop("retention_applied_batches", None)  # batch ids differ by design
        digests[source] = tables
    return digests


def kill_externally(process: subprocess.Popen, env: dict[str, str]) -> None:
    """SIGKILL from outside once the apply step has written some ledger rows."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if ledger_count(env) >= 250:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)


_REFERENCE: dict[str, tuple[dict, list[tuple]]] = {}


def reference_outcome(backend: str, tmp_path: Path) -> tuple[dict, list[tuple]]:
    """Databases and ledger after one uninterrupted run (computed once per backend and worker)."""
    if backend not in _REFERENCE:
        tmp_path.mkdir(parents=True, exist_ok=True)
        with server_databases(backend, tmp_path) as databases:
            reference = make_estate(databases, tmp_path, "ref")
            done = run(reference)
            output = done.communicate(timeout=300)[0].decode()
            assert done.returncode == 0, output
            _REFERENCE[backend] = (estate_state(reference), ledger_rows(reference))
    return _REFERENCE[backend]


def check_kill_and_resume(databases: ServerDatabases, tmp_path: Path, point: str, *, refused: bool = False) -> None:
    """With `refused`, a run started while the killed run's lease lives is refused first."""
    state, rows = reference_outcome(databases.backend, tmp_path / "reference")
    victim = make_estate(databases, tmp_path, "vic", REFUSING_LEASE_SECONDS if refused else LEASE_SECONDS)

    process = run(victim, None if point == "external" else point)
    if point == "external":
        kill_externally(process, victim)
    output = process.communicate(timeout=300)[0].decode()
    if point.startswith("writer:"):  # the ledger writer process was killed: the run stops and says why
        assert process.returncode not in (0, -signal.SIGKILL), output
        assert "the ledger writer process ended without a word" in output, output
    else:
        assert process.returncode == -signal.SIGKILL, f"the run was not killed at {point}:\n{output}"
        if refused:  # the killed run's lease lives on until it expires
            second = run(victim)
            output = second.communicate(timeout=300)[0].decode()
            assert second.returncode == 1 and "another daily run is under way: run " in output, output
            assert "Nothing was started" in output
        wait_for_leases_to_expire(victim["RETENTION_CONTROL_URL"])
    assert ledger_rows(victim) != rows, "the kill came too late to test anything"

    resumed = run(victim)
    output = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, output
    assert estate_state(victim) == state
    assert ledger_rows(victim) == rows
    killed = alerts_of_kind(victim, KILLED_RUN)
    assert len(killed) == (0 if point.startswith("writer:") else 1), killed
    assert all(subject == DAILY for subject in killed)


def alerts_of_kind(env: dict[str, str], kind: str) -> list[str]:
    engine = sa.create_engine(env["RETENTION_CONTROL_URL"])
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.select(failure_alerts.c.subject).where(failure_alerts.c.kind == kind)).scalars()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("point", ["after_ledger:1", "inside_source:3", "after_source:9", "writer:6", "external"])
def test_kill_and_resume_on_sqlite(point: str, tmp_path: Path) -> None:
    with server_databases("sqlite", tmp_path) as databases:
        check_kill_and_resume(databases, tmp_path, point, refused=point == "after_ledger:1")


@pytest.mark.servers
@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_kill_and_resume_on_servers(server: str, tmp_path: Path) -> None:
    with server_databases(server, tmp_path) as databases:
        check_kill_and_resume(databases, tmp_path, "inside_source:5", refused=True)

"""A `retention run` on the webshop killed with SIGKILL mid-apply leaves no half-done batch; the next run finishes
the day, and the databases and the ledger end as after one uninterrupted run.

The webshop's batches include composite keys (order lines, wishes) and text dates, which the batch markers
and the re-applied pending batches must handle like any other. Small batches make many of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.storage.schema import ledger
from tests.databases import ServerDatabases, server_databases
from tests.support import table_digests, wait_for_leases_to_expire
from tests.webshop.estate import ANCHOR, new_webshop
from tests.webshop.schema import WEBSHOP_SOURCES

ROOT = Path(__file__).resolve().parents[2]
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
BATCH_ROWS = "10"
LEASE_SECONDS = 3
"""How long the killed run's daily lease outlives it: the next run waits that long, then takes it over."""


def make_estate(databases: ServerDatabases, tmp_path: Path, name: str) -> dict[str, str]:
    env = new_webshop(databases, tmp_path / name, label=name)
    return env | {"RETENTION_BATCH_ROWS": BATCH_ROWS, "RETENTION_LEASE_SECONDS": str(LEASE_SECONDS)}


def run(env: dict[str, str], fault: str | None = None) -> subprocess.Popen[bytes]:
    """The daily run as the `retention` command does it; with `fault` ("phase:batch") through the tests' entry
    point that kills it there (`tests.fault_run`)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTION_", "WEBSHOP_"))}
    entry = ["-m", "tests.fault_run", fault] if fault else ["-m", "cli"]
    command = [sys.executable, *entry, "run", "--as-of", ANCHOR.isoformat(), "--confirm-large-plan"]
    return subprocess.Popen(command, cwd=ROOT, env=inherited | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def control_url(env: dict[str, str]) -> str:
    return env["WEBSHOP_CONTROL_URL"]


def ledger_rows(env: dict[str, str]) -> list[tuple[object, ...]]:
    engine = sa.create_engine(control_url(env))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(*(ledger.c[f] for f in LEDGER_FIELDS))).all()
    finally:
        engine.dispose()
    return sorted(tuple(r) for r in rows)


def estate_state(env: dict[str, str]) -> dict[str, dict[str, str]]:
    state = {}
    for source in WEBSHOP_SOURCES:
        digests = table_digests(env[f"WEBSHOP_{source.upper()}_URL"])
        digests.pop("retention_applied_batches", None)  # batch ids differ by design
        state[source] = digests
    return state


_REFERENCE: dict[str, tuple[dict[str, dict[str, str]], list[tuple[object, ...]]]] = {}


def reference_outcome(backend: str, tmp_path: Path) -> tuple[dict[str, dict[str, str]], list[tuple[object, ...]]]:
    """Databases and ledger after one uninterrupted run (once per backend and worker)."""
    if backend not in _REFERENCE:
        tmp_path.mkdir(parents=True, exist_ok=True)
        with server_databases(backend, tmp_path) as databases:
            reference = make_estate(databases, tmp_path, "ref")
            done = run(reference)
            output = done.communicate(timeout=300)[0].decode()
            assert done.returncode == 0, output
            _REFERENCE[backend] = (estate_state(reference), ledger_rows(reference))
    return _REFERENCE[backend]


def check_kill_and_resume(databases: ServerDatabases, tmp_path: Path, point: str) -> None:
    state, rows = reference_outcome(databases.backend, tmp_path / "reference")
    victim = make_estate(databases, tmp_path, "vic")
    before = estate_state(victim)
    assert before != state, "the uninterrupted run changed nothing to compare"

    killed = run(victim, point)
    output = killed.communicate(timeout=300)[0].decode()
    assert killed.returncode == -signal.SIGKILL, f"the run was not killed at {point}:\n{output}"
    assert ledger_rows(victim) != rows, "the kill came too late to test anything"

    wait_for_leases_to_expire(control_url(victim))
    resumed = run(victim)
    output = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, output
    assert estate_state(victim) == state
    assert ledger_rows(victim) == rows


@pytest.mark.parametrize("point", ["after_ledger:1", "inside_source:3", "after_source:5"])
def test_webshop_kill_and_resume_on_sqlite(point: str, tmp_path: Path) -> None:
    with server_databases("sqlite", tmp_path) as databases:
        check_kill_and_resume(databases, tmp_path, point)


@pytest.mark.servers
@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_webshop_kill_and_resume_on_servers(server: str, tmp_path: Path) -> None:
    with server_databases(server, tmp_path) as databases:
        check_kill_and_resume(databases, tmp_path, "inside_source:4")

"""A daily run and an erasure that overlap, and a request after a killed daily run.

The erasure starts while the daily run is paused after a snapshot, after the plan, or inside its apply. Both
end well: the erasure is done, the daily run's checks pass, and after the next daily run the databases equal
those of the erasure followed by two daily runs, one after the other. The daily run never re-applies what the
erasure changed meanwhile (its apply leaves those rows to the next day), and the erasure waits for the daily
apply's hold on a database, never the other way round.

A daily run killed mid-apply leaves its lease; once it has expired the request sensor marks the run failed,
records an alert and launches a pending erasure, which finishes the killed run's pending batches first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.instance import local_instance
from retention.requests.kinds import RequestStatus
from retention.storage.leases import held
from retention.storage.schema import PENDING, ledger_batches
from tests.databases import server_databases
from tests.e2e.test_request_kill_resume import LEASE_SECONDS, killed_alerts, person_email
from tests.e2e.test_requests_sensor import _definitions, _evaluate, _execute, _queue
from tests.requests_support import ANCHOR, demo_estate, estate_contents, stored_request
from tests.support import wait_for_leases_to_expire

ROOT = Path(__file__).resolve().parents[2]
DAY = ANCHOR


def start(args: list[str], fault: str | None = None, folder: Path | None = None) -> subprocess.Popen[str]:
    env = os.environ | {"RETENTION_LEASE_SECONDS": str(LEASE_SECONDS)}
    if folder is not None:
        env["FAULT_DIR"] = str(folder)
    entry = ["-m", "tests.fault_run", fault] if fault else ["-m", "cli"]
    return subprocess.Popen(
        [sys.executable, *entry, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    output = process.communicate(timeout=300)[0]
    return process.returncode, output


def daily(fault: str | None = None, folder: Path | None = None) -> subprocess.Popen[str]:
    return start(["run", "--as-of", DAY.isoformat(), "--confirm-large-plan"], fault, folder)


def erase(email: str) -> subprocess.Popen[str]:
    return start(["request", "erase", "--email", email, "--now"])


def ok(process: subprocess.Popen[str]) -> str:
    code, output = finish(process)
    assert code == 0, output
    return output


_REFERENCE: dict[tuple[str, str], dict] = {}


def reference(backend: str, order: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The databases after the same runs one after the other: 'erase first' or 'daily first', then a daily."""
    if (backend, order) not in _REFERENCE:
        tmp_path.mkdir(parents=True, exist_ok=True)
        with monkeypatch.context() as patch, server_databases(backend, tmp_path) as dbs:
            demo = demo_estate(patch, dbs, tmp_path, people=60, seed=23)
            email = person_email(demo)
            steps = [lambda: erase(email), daily] if order == "erase first" else [daily, lambda: erase(email)]
            for step in steps:  # one after the other, each once the last has ended
                ok(step())
            ok(daily())
            _REFERENCE[(backend, order)] = estate_contents(demo.urls)
    return _REFERENCE[(backend, order)]


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    give_up = time.monotonic() + 120
    while not path.exists():
        assert process.poll() is None, finish(process)[1]
        assert time.monotonic() < give_up, "the daily run never reached the point"
        time.sleep(0.05)


def check_erasure_during(backend: str, point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = reference(
        backend, "daily first" if point.startswith("after_source") else "erase first", tmp_path / "ref", monkeypatch
    )
    with server_databases(backend, tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=23)
        email = person_email(demo)
        folder = tmp_path / "signals"
        folder.mkdir()
        run = daily(f"wait:{point}", folder)
        wait_for(folder / "reached", run)
        erasure = erase(email)
        if point.startswith("after_source"):
            time.sleep(2 * LEASE_SECONDS)  # the erasure waits for the apply's hold on the database, well past a lease
            assert erasure.poll() is None, "the erasure wrote while the daily run held the database"
        else:
            ok(erasure)
        (folder / "go").touch()
        ok(run)
        ok(erasure)
        control = sa.create_engine(demo.control_url)
        try:
            assert stored_request(control, 1).status is RequestStatus.DONE
            assert held(control) == []
        finally:
            control.dispose()
        ok(daily())
        assert email not in str(estate_contents(demo.urls))
        assert estate_contents(demo.urls) == expected


@pytest.mark.parametrize("point", ["snapshot:1", "plan:1", "after_source:1"])
def test_an_erasure_during_a_daily_run_on_sqlite(point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_erasure_during("sqlite", point, tmp_path, monkeypatch)


@pytest.mark.servers
@pytest.mark.parametrize("point", ["snapshot:2", "after_source:1"])
def test_an_erasure_during_a_daily_run_on_postgresql(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_erasure_during("postgresql", point, tmp_path, monkeypatch)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def test_a_request_after_a_killed_daily_run(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = reference(backend, "daily first", tmp_path / "ref", monkeypatch)
    with server_databases(backend, tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=23)
        email = person_email(demo)
        code, output = finish(daily("after_ledger:3"))
        assert code == -signal.SIGKILL, output
        ok(start(["request", "erase", "--email", email]))  # registered; the sensor launches it
        wait_for_leases_to_expire(demo.control_url)
        defs = _definitions()
        with local_instance() as instance:
            (killed,) = instance.get_runs(filters=dg.RunsFilter(job_name="daily_retention"))
            assert killed.status is dg.DagsterRunStatus.STARTED
            launched = _evaluate(defs, instance)
            assert instance.get_run_by_id(killed.run_id).status is dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
            (alert,) = killed_alerts(demo.control_url)
            assert alert.startswith("daily, source:"), alert  # the daily lease and the source it was applying
            (run,) = _queue(defs, instance, launched)
            _execute(defs, instance, run)
        control = sa.create_engine(demo.control_url)
        try:
            assert stored_request(control, 1).status is RequestStatus.DONE
            with control.connect() as conn:
                pending = conn.execute(sa.select(ledger_batches).where(ledger_batches.c.status == PENDING)).all()
            assert pending == [], "the request finished the killed run's pending batches"
        finally:
            control.dispose()
        ok(daily())
        assert estate_contents(demo.urls) == expected

"""An erasure killed with SIGKILL at several points is finished by `retention request run` and by the request
sensor once the killed run's lease has expired: the databases and the ledger then equal those of an erasure
that was never interrupted, and the request's identifiers are gone from the control database.

While the killed run's lease lives, `request run` refuses and names that run; the sensor, once the lease has
expired, marks the killed Dagster run failed, records an alert and queues the request again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.instance import local_instance
from retention.reporting.alerts import KILLED_RUN
from retention.requests.kinds import RequestStatus
from retention.storage.leases import held
from retention.storage.schema import failure_alerts, ledger
from tests.databases import server_databases
from tests.e2e.test_kill_resume import LEDGER_FIELDS, REFUSING_LEASE_SECONDS
from tests.e2e.test_requests_sensor import _definitions, _evaluate, _execute, _queue
from tests.requests_support import (
    DemoEstate,
    customer_identifiers,
    demo_estate,
    estate_contents,
    rows_of,
    stored_request,
)
from tests.support import wait_for_leases_to_expire

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3


def retention(
    args: list[str], fault: str | None = None, lease_seconds: int = LEASE_SECONDS
) -> subprocess.CompletedProcess:
    """The `retention` command in its own process, with the test's environment; with `fault` ("phase:batch"),
    killed there with SIGKILL (`tests.fault_run`)."""
    env = os.environ | {"RETENTION_LEASE_SECONDS": str(lease_seconds)}
    entry = ["-m", "tests.fault_run", fault] if fault else ["-m", "cli"]
    return subprocess.run(
        [sys.executable, *entry, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def person_email(demo: DemoEstate) -> str:
    """The e-mail of a person with rows in all three databases, so that a kill can fall between them."""
    view = demo.view()
    everywhere = set(view.index.subjects.loc[view.index.subjects["sources"] == 3, "subject"])
    customers = sorted(everywhere & set(view.tagged[("enrolment", "customers")].frame["subject"]))
    ids = customer_identifiers(demo.urls["enrolment"], rows_of(view, {customers[2]})[("enrolment", "customers")])
    return ids["email"]


def ledger_rows(control_url: str) -> list[tuple]:
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(sa.select(*(ledger.c[f] for f in LEDGER_FIELDS))))
    finally:
        engine.dispose()


def killed_alerts(control_url: str) -> list[str]:
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(sa.select(failure_alerts.c.subject).where(failure_alerts.c.kind == KILLED_RUN)).scalars()
            )
    finally:
        engine.dispose()


_REFERENCE: dict[str, tuple[dict, list[tuple]]] = {}


def reference(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[tuple]]:
    """Databases and ledger after the same erasure, never interrupted (once per backend and worker)."""
    if backend not in _REFERENCE:
        tmp_path.mkdir(parents=True, exist_ok=True)
        with monkeypatch.context() as patch, server_databases(backend, tmp_path) as dbs:
            demo = demo_estate(patch, dbs, tmp_path, people=60, seed=23)
            done = retention(["request", "erase", "--email", person_email(demo), "--now"])
            assert done.returncode == 0, done.stdout + done.stderr
            _REFERENCE[backend] = (estate_contents(demo.urls), ledger_rows(demo.control_url))
    return _REFERENCE[backend]


def finish_with_the_sensor(demo: DemoEstate, request_id: int) -> None:
    """The daemon's part, played by the test on the instance the killed run used."""
    defs = _definitions()
    with local_instance() as instance:
        (killed,) = instance.get_runs(filters=dg.RunsFilter(job_name="subject_request"))
        assert killed.status is dg.DagsterRunStatus.STARTED, "a killed run stays started until someone says"
        launched = _evaluate(defs, instance)
        assert instance.get_run_by_id(killed.run_id).status is dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
        assert [r.tags["retention/attempt"] for r in launched] == ["2"]
        (run,) = _queue(defs, instance, launched)
        _execute(defs, instance, run)
        assert _evaluate(defs, instance) == []


def check_killed_erasure(
    backend: str, point: str, finish: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, rows = reference(backend, tmp_path / "reference", monkeypatch)
    with server_databases(backend, tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=23)
        lease = REFUSING_LEASE_SECONDS if finish == "cli" else LEASE_SECONDS  # long enough to be refused first
        killed = retention(["request", "erase", "--email", person_email(demo), "--now"], point, lease)
        assert killed.returncode == -signal.SIGKILL, f"not killed at {point}: {killed.stdout}{killed.stderr}"
        control = sa.create_engine(demo.control_url)
        try:
            (request,) = [stored_request(control, 1)]
            assert request.status is RequestStatus.RUNNING
            assert held(control), "the killed run's leases are still there"
            if finish == "cli":
                refused = retention(["request", "run", "1"])
                assert refused.returncode == 1 and "is being carried out by run " in refused.stderr, refused.stderr
            wait_for_leases_to_expire(demo.control_url)
            if finish == "cli":
                done = retention(["request", "run", "1"])
                assert done.returncode == 0, done.stdout + done.stderr
            else:
                finish_with_the_sensor(demo, 1)
                assert killed_alerts(demo.control_url), "the sensor records the killed run"
            request = stored_request(control, 1)
            assert request.status is RequestStatus.DONE
            assert request.identifiers is None and request.tokens == ()
            assert held(control) == []
        finally:
            control.dispose()
        assert estate_contents(demo.urls) == state
        assert ledger_rows(demo.control_url) == rows


@pytest.mark.parametrize(
    ("point", "finish"),
    [
        ("after_ledger:1", "cli"),
        ("inside_source:1", "sensor"),
        ("after_source:2", "cli"),
        ("before_receipt:1", "sensor"),
    ],
)
def test_a_killed_erasure_is_finished_on_sqlite(
    point: str, finish: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_killed_erasure("sqlite", point, finish, tmp_path, monkeypatch)


@pytest.mark.servers
@pytest.mark.parametrize(("point", "finish"), [("inside_source:2", "cli"), ("after_ledger:1", "sensor")])
def test_a_killed_erasure_is_finished_on_postgresql(
    point: str, finish: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_killed_erasure("postgresql", point, finish, tmp_path, monkeypatch)

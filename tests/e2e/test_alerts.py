"""Alerts: a failed daily run is recorded in the control database and posted to the webhook, once, with an
error text that cannot quote data; posting never raises, whatever the other end does."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import dagster as dg
import pytest

from pipelines.instance import local_instance
from pipelines.runner import report_for_day, run_daily
from retention.demo.schema import DEMO_SOURCES
from retention.quality.checks import COLUMNS_EXIST
from retention.reporting.alerts import (
    BLOCKING_CHECK,
    STEP_FAILURE,
    WEBHOOK_ENV,
    Alert,
    post_webhook,
    raise_alerts,
    recent_alerts,
    safe_error_text,
)
from retention.storage.engines import make_engine
from tests.databases import ServerDatabases
from tests.e2e.test_quality import ANCHOR, evaluations, execute, make_estate, started_steps


@contextmanager
def receiver(delay: float = 0.0) -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP endpoint on localhost that keeps every JSON body posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            time.sleep(delay)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_posts_json_and_never_raises() -> None:
    with receiver() as (url, received):
        assert post_webhook(url, {"text": "run failed"}) is True
    assert received == [{"text": "run failed"}]
    assert post_webhook(f"http://127.0.0.1:{closed_port()}/hook", {"text": "x"}) is False
    assert post_webhook("not a url", {"text": "x"}) is False
    assert post_webhook("file:///dev/null", {"text": "x"}) is False
    with receiver(delay=2.0) as (url, _):
        started = time.perf_counter()
        assert post_webhook(url, {"text": "x"}, timeout=0.3) is False
        assert time.perf_counter() - started < 1.5


def test_error_texts_never_quote_data() -> None:
    assert safe_error_text("sqlalchemy.exc.IntegrityError", "Key (email)=(anna@example.dk) exists").startswith(
        "IntegrityError (message not recorded"
    )
    guard = safe_error_text("retention.planning.GuardError", "plan for 2025-06-01 touches 80 of 90 rows; ring 12345678")
    assert "2025-06-01" in guard and "80 of 90" in guard and "12345678" not in guard


def test_failed_run_is_recorded_and_posted_once_by_the_sensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dropped personal column: the snapshot cannot be read, the schema check names the column, nothing is
    applied, and the run-failure sensor records and posts the failure; the day's report lists it."""
    urls, control = make_estate(tmp_path, monkeypatch)
    execute(urls["enrolment"], "ALTER TABLE customers DROP COLUMN employer")
    with receiver() as (url, received):
        monkeypatch.setenv(WEBHOOK_ENV, url)
        result = run_daily(ANCHOR, confirm_large_plan=True)
        assert not result.success
        schema = evaluations(result)[("source_schema/enrolment", COLUMNS_EXIST)]
        assert not schema.passed and "customers.employer" in cast(str, schema.metadata["failures"].value)
        steps = started_steps(result)
        assert "snapshot__enrolment" in steps and not {f"apply__{s}" for s in DEMO_SOURCES} & steps

        from pipelines.definitions import defs

        sensor = defs.resolve_sensor_def("daily_run_failure_alert")
        with local_instance() as instance:
            run = instance.get_run_by_id(result.run_id)
            assert run is not None
            failure = next(
                e.dagster_event for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            )
            assert failure is not None
            for _ in range(2):  # a sensor may see the same failure again: it is recorded and posted once
                context = dg.build_run_status_sensor_context(
                    sensor_name=sensor.name, dagster_event=failure, dagster_instance=instance, dagster_run=run
                ).for_run_failure()
                sensor(context)

    engine = make_engine(control)
    try:
        alerts = recent_alerts(engine)
    finally:
        engine.dispose()
    assert [(a.kind, a.subject, a.partition_key, a.run_id) for a in alerts] == [
        (STEP_FAILURE, "snapshot__enrolment", ANCHOR.isoformat(), result.run_id)
    ]
    assert alerts[0].error.startswith("KeyError (message not recorded") and alerts[0].notified is True
    assert len(received) == 1
    posted = received[0]
    assert posted["run_id"] == result.run_id and posted["subject"] == "snapshot__enrolment"
    assert posted["partition_key"] == ANCHOR.isoformat() and "daily_retention" in posted["text"]

    files, notes = report_for_day(ANCHOR)
    report = files.markdown.read_text(encoding="utf-8")
    assert "none could be computed now" in " ".join(notes)
    failures = report[report.index("## 6. Failures") :]
    assert f"| {result.run_id[:8]} | {ANCHOR.isoformat()} | step_failure: snapshot__enrolment |" in failures
    assert "| source_schema/enrolment | classified_columns_exist | no | FAILED (WARN) |" in report


@pytest.mark.servers
def test_alerts_are_stored_once_on_every_backend(databases: ServerDatabases) -> None:
    engine = make_engine(databases.new_url("control"))
    try:
        when = dt.datetime(2025, 6, 2, 0, 31, 5, tzinfo=dt.UTC)
        alert = Alert("run-1", "daily_retention", "2025-06-01", BLOCKING_CHECK, "snapshot/x:keys", "failed", when)
        assert raise_alerts(engine, [alert, alert], webhook="") == [alert]
        assert raise_alerts(engine, [alert], webhook="") == []
        stored = recent_alerts(engine)
        assert [(a.run_id, a.subject, a.occurred_at) for a in stored] == [("run-1", "snapshot/x:keys", when)]
        assert recent_alerts(engine, since=when + dt.timedelta(seconds=1)) == []
    finally:
        engine.dispose()

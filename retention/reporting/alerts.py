"""Failure alerts: failed runs and failed blocking checks, recorded in the control database and posted to a webhook.

A retention run that fails and nobody hears of is a deletion that silently did not happen. Each failure is
written once to the control database (the compliance report lists them) and, when RETENTION_ALERT_WEBHOOK is
set, posted as JSON. Error texts are reduced to what cannot quote data: messages of the engine's own errors,
which name tables, counts and checks, and only the exception type of anything else (a database error may quote
the row it choked on).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from retention.rules.calendar import utc
from retention.storage.schema import MAX_ERROR_CHARS, ensure_schema, failure_alerts

log = logging.getLogger(__name__)


WEBHOOK_ENV = "RETENTION_ALERT_WEBHOOK"


WEBHOOK_TIMEOUT_SECONDS = 5.0


RUN_FAILURE = "run_failure"


STEP_FAILURE = "step_failure"


BLOCKING_CHECK = "blocking_check"


KILLED_RUN = "killed_run"
"""A run that stopped being heard of (its process killed): another run took over its leases."""


# Exceptions whose messages the engine writes itself from configuration, counts and names, never from data.
SAFE_MESSAGES = frozenset(
    {
        "DagsterAssetCheckFailedError",
        "GuardError",
        "ConfigError",
        "EstateError",
        "KeyError_",
        "RequestSettingsError",
        "BlockingCheckFailed",
        "RestoredDatabase",
        "LeaseBusy",
    }
)


@dataclass(frozen=True)
class Alert:
    """One failure. `subject` names what failed: the job, a step key, or 'asset key:check name'."""

    run_id: str
    job_name: str
    partition_key: str | None
    kind: str
    subject: str
    error: str
    occurred_at: dt.datetime
    notified: bool | None = None

    def text(self) -> str:
        day = f" for {self.partition_key}" if self.partition_key else ""
        what = {
            RUN_FAILURE: "run failed",
            STEP_FAILURE: "step failed",
            BLOCKING_CHECK: "blocking check failed",
            KILLED_RUN: "run killed",
        }
        return f"retention: {self.job_name}{day}: {what.get(self.kind, self.kind)}: {self.subject}: {self.error}"

    def payload(self) -> dict[str, object]:
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        data.pop("notified")
        return {"text": self.text(), **data}


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


_LONG_NUMBER = re.compile(r"(?<![\w.-])\+?\d(?: ?\d){7,}(?![\w.-])")


def safe_error_text(error_type: str | None, message: str | None) -> str:
    """A short error text that cannot carry a personal value (see SAFE_MESSAGES)."""
    name = (error_type or "error").rsplit(".", 1)[-1]
    if name in SAFE_MESSAGES and message:
        text = " ".join(message.split())
        text = _LONG_NUMBER.sub("[number]", _EMAIL.sub("[e-mail]", text))
        return f"{name}: {text}"[:MAX_ERROR_CHARS]
    return f"{name} (message not recorded, it may quote data; the run's log in Dagster has it)"[:MAX_ERROR_CHARS]


def record_alert(engine: sa.Engine, alert: Alert) -> bool:
    """Store the alert once; False when this run already has it (a sensor may see a failure twice)."""
    ensure_schema(engine)
    row = asdict(alert)
    row["occurred_at"] = utc(alert.occurred_at)
    row["error"] = alert.error[:MAX_ERROR_CHARS]
    row["subject"] = alert.subject[:250]
    try:
        with engine.begin() as conn:
            conn.execute(failure_alerts.insert().values(**row))
    except sa.exc.IntegrityError:
        return False
    return True


def mark_notified(engine: sa.Engine, alert: Alert, notified: bool) -> None:
    with engine.begin() as conn:
        conn.execute(
            failure_alerts.update()
            .where(
                failure_alerts.c.run_id == alert.run_id,
                failure_alerts.c.kind == alert.kind,
                failure_alerts.c.subject == alert.subject[:250],
            )
            .values(notified=notified)
        )


def recent_alerts(engine: sa.Engine, *, since: dt.datetime | None = None, limit: int = 25) -> list[Alert]:
    """The latest alerts, newest first."""
    ensure_schema(engine)
    query = sa.select(failure_alerts).order_by(failure_alerts.c.occurred_at.desc(), failure_alerts.c.alert_id.desc())
    if since is not None:
        query = query.where(failure_alerts.c.occurred_at >= utc(since))
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit)).mappings().all()
    return [
        Alert(
            run_id=r["run_id"],
            job_name=r["job_name"],
            partition_key=r["partition_key"],
            kind=r["kind"],
            subject=r["subject"],
            error=r["error"],
            occurred_at=utc(r["occurred_at"]),
            notified=r["notified"],
        )
        for r in rows
    ]


def post_webhook(url: str, payload: dict[str, object], *, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> bool:
    """POST JSON; True on a 2xx answer. Never raises: an alert must not turn into a second failure.

    Only http and https are used: urllib would also open file: and ftp: URLs.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        log.warning("alert webhook URL is not an http(s) URL; nothing posted")
        return False
    body = json.dumps(payload, ensure_ascii=True).encode()
    try:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "retention-alerts"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
            if not ok:
                log.warning("alert webhook answered %s", response.status)
            return ok
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("alert webhook could not be reached: %s", type(exc).__name__)
        return False


def raise_alerts(engine: sa.Engine | None, alerts: Iterable[Alert], *, webhook: str | None = None) -> list[Alert]:
    """Record each alert and post the new ones; returns the new ones. Recording failures are logged, not raised.

    If the control database cannot be reached the alert is still posted, so a broken database is not silent.
    """
    url = webhook if webhook is not None else os.environ.get(WEBHOOK_ENV)
    new = []
    for alert in alerts:
        stored = True
        if engine is not None:
            try:
                stored = record_alert(engine, alert)
            except sa.exc.SQLAlchemyError as exc:
                log.error("could not record the alert in the control database: %s", type(exc).__name__)
                engine = None
        if not stored:
            continue
        new.append(alert)
        if url:
            sent = post_webhook(url, alert.payload())
            if engine is not None:
                try:
                    mark_notified(engine, alert, sent)
                except sa.exc.SQLAlchemyError as exc:
                    log.error("could not mark the alert as notified: %s", type(exc).__name__)
    return new

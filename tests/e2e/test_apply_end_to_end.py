"""The daily job changes the databases as the policy says, on SQLite, PostgreSQL and MariaDB.

Several days run in order through the real Dagster job; afterwards the databases themselves are checked:
against a fresh plan (nothing due may remain), against the policy's rules written as plain SQL, against
checksums of the vouchers still inside their bookkeeping period, and the ledger is scanned for raw values.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.runner import run_daily
from retention.config.keys import load_keyring
from retention.config.loading import load_config
from retention.daily.flow import compute_plan
from retention.demo.generator import generate_demo_estate
from retention.storage.engines import Estate
from retention.storage.schema import ledger
from tests.databases import ServerDatabases
from tests.support import SECRET, find_leaks, personal_values, point_engine_at, stored_bytes, table_digests

ANCHOR = dt.date(2026, 3, 1)
DAYS = [ANCHOR - dt.timedelta(days=500), ANCHOR, ANCHOR + dt.timedelta(days=200)]
PEOPLE = 100
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.servers


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def held_invoices(url: str, day: dt.date) -> dict[int, tuple]:
    """Invoices still inside their bookkeeping period at the end of `day` (calendar financial year)."""
    engine = _engine(url)
    try:
        invoices = sa.Table("invoices", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(invoices).order_by(invoices.c.invoice_id)).all()
    finally:
        engine.dispose()
    return {r.invoice_id: tuple(r) for r in rows if dt.date(r.invoice_date.year + 5, 12, 31) >= day}


def scalar(url: str, sql: str, **params: object) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())
    finally:
        engine.dispose()


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """`moment` so many calendar months earlier, its day cut to the last of a shorter month (31 March less one
    month is 28 or 29 February), as the policy's periods count, written out independently of the engine."""
    year, month_index = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month = month_index + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def policy_violations(urls: dict[str, str], day: dt.date) -> dict[str, int]:
    """The policy's rules as plain SQL: each count must be zero after the run for `day`."""
    end = dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1)
    return {
        "opens and clicks older than 13 months": scalar(
            urls["newsletter"], "SELECT COUNT(*) FROM events WHERE occurred_at < :t", t=months_before(end, 13)
        ),
        "sends older than 13 months": scalar(
            urls["newsletter"], "SELECT COUNT(*) FROM sends WHERE sent_at < :t", t=months_before(end, 13)
        ),
        "subscribers unsubscribed over 2 years ago": scalar(
            urls["newsletter"],
            "SELECT COUNT(*) FROM subscribers WHERE unsubscribed_at < :t",
            t=months_before(end, 24) - dt.timedelta(hours=2),
        ),
        "unsubscribed subscribers with an e-mail in clear": scalar(
            urls["newsletter"],
            "SELECT COUNT(*) FROM subscribers WHERE unsubscribed_at < :t AND email LIKE '%@%'",
            t=end - dt.timedelta(hours=2),
        ),
        "passwords 6 months after the last login": scalar(
            urls["elearning"],
            "SELECT COUNT(*) FROM accounts WHERE last_login_at < :t AND password_hash IS NOT NULL",
            t=months_before(end, 6) - dt.timedelta(hours=2),
        ),
        "special-needs notes after the course": scalar(
            urls["enrolment"],
            "SELECT COUNT(*) FROM enrolments WHERE course_end < :d AND special_needs IS NOT NULL",
            d=day,
        ),
    }


def test_daily_runs_in_order_enforce_the_policy(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {source: databases.new_url(source) for source in ("enrolment", "newsletter", "elearning")}
    generate_demo_estate(urls, people=PEOPLE, seed=11, anchor=ANCHOR)
    point_engine_at(monkeypatch, urls, databases.new_url("control"), tmp_path / "var")
    values = personal_values(urls)
    before = {day: held_invoices(urls["enrolment"], day) for day in DAYS}
    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    keyring, _ = load_keyring(demo=False)

    for day in DAYS:
        result = run_daily(day, confirm_large_plan=True)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks)
        assert policy_violations(urls, day) == dict.fromkeys(policy_violations(urls, day), 0)
        # vouchers inside their bookkeeping period are byte-for-byte what they were before any run
        now_held = held_invoices(urls["enrolment"], day)
        assert now_held == before[day]
        # nothing that is due remains: a fresh plan for the day is empty
        estate = Estate.connect(config.catalog)
        try:
            assert compute_plan(config, estate, keyring, day).plan.total() == 0
        finally:
            estate.dispose()

    control_url = os.environ["RETENTION_CONTROL_URL"]
    engine = _engine(control_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ledger)).all()
    engine.dispose()
    assert rows, "the runs recorded nothing"
    assert {r.status for r in rows} == {"done"}
    assert {r.action for r in rows} == {"delete", "pseudonymise", "clear"}
    assert {r.as_of for r in rows} <= set(DAYS)
    # the ledger names rows by key and subject key only: no personal value of the estate is in it
    ledger_text = "\n".join(repr(tuple(r)) for r in rows).encode()
    assert find_leaks(values, {"ledger": ledger_text}) == []

    # the key is in no file Dagster wrote (outputs, event log, compute logs) and not in the ledger
    key_forms = [SECRET, SECRET.hex().encode(), base64.b64encode(SECRET)]
    files = stored_bytes(tmp_path / "var" / "dagster") | {"ledger": ledger_text}
    assert [name for name, data in files.items() if any(form in data for form in key_forms)] == []

    # running the last day again changes nothing and records nothing new
    digests = {source: table_digests(url) for source, url in urls.items()}
    result = run_daily(DAYS[-1], confirm_large_plan=True)
    assert result.success
    assert {source: table_digests(url) for source, url in urls.items()} == digests
    engine = _engine(control_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one() == len(rows)
    engine.dispose()

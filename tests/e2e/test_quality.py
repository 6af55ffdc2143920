"""Data-quality checks on real daily runs: broken data fails the right checks, a blocking failure stops the plan
and the apply step before anything is changed, and the Data Docs hold no personal value.

The estate is the demo estate in temporary SQLite files, damaged with plain SQL the way real databases go
wrong: a legacy table without a primary key constraint holding a key twice, a date typed in the future, a
dropped column, an orphaned child row, e-mails that are not e-mails.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import cast

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.runner import run_daily
from retention.config import settings
from retention.config.keys import load_keyring
from retention.config.loading import load_config
from retention.daily.snapshot import snapshot_source
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from retention.quality.checks import (
    COLUMNS_EXIST,
    FOREIGN_KEYS,
    FUTURE,
    IDENTIFIERS,
    KEYS,
    PARSEABLE,
    SCHEMA_CHECKS,
    SNAPSHOT_CHECKS,
)
from retention.quality.flags import source_flags
from retention.quality.gx import quality_dir
from retention.quality.run import check_snapshot
from retention.quality.suites import CLOCK_SKEW, future_bound
from retention.reporting.alerts import BLOCKING_CHECK, recent_alerts
from retention.storage.engines import make_engine
from tests.databases import ServerDatabases
from tests.support import find_leaks, personal_values, point_engine_at, stored_bytes

ANCHOR = dt.date(2025, 6, 1)
PEOPLE = 120
SEED = 31
ROOT = Path(__file__).resolve().parents[2]
PLAN_AND_APPLY = {"subject_index", "tagged_records", "retention_plan", *(f"apply__{s}" for s in DEMO_SOURCES)}


def make_estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], str]:
    """The demo estate in temporary SQLite files and the engine pointed at it with its own var/ and key."""
    urls = {source: f"sqlite:///{tmp_path / (source + '.db')}" for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=PEOPLE, seed=SEED, anchor=ANCHOR)
    control = f"sqlite:///{tmp_path / 'control.db'}"
    point_engine_at(monkeypatch, urls, control, tmp_path / "var")
    return urls, control


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def scalar(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def row_counts(urls: dict[str, str]) -> dict[str, int]:
    counts = {}
    for source, url in urls.items():
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                for table in sa.inspect(engine).get_table_names():
                    counts[f"{source}.{table}"] = conn.execute(
                        sa.select(sa.func.count()).select_from(sa.table(table))
                    ).scalar_one()
        finally:
            engine.dispose()
    return counts


def drop_primary_key(url: str, table: str, pk: str) -> None:
    """Rebuild a SQLite table from its own DDL without the primary key constraint (a legacy table)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).scalar_one()
            without = ddl.replace(f", \n\tPRIMARY KEY ({pk})", "").replace(f"PRIMARY KEY ({pk}), ", "")
            assert "PRIMARY KEY" not in without, ddl
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_old")
            conn.exec_driver_sql(without)
            conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {table}_old")
            conn.exec_driver_sql(f"DROP TABLE {table}_old")
    finally:
        engine.dispose()


def evaluations(result: dg.JobExecutionResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def started_steps(result: dg.JobExecutionResult) -> set[str]:
    return {
        e.step_key
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_START and e.step_key is not None  # a step event has its key
    }


def test_broken_data_fails_the_right_checks_and_blocks_plan_and_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls, control = make_estate(tmp_path, monkeypatch)
    values = personal_values(urls)
    drop_primary_key(urls["newsletter"], "events", "event_id")
    execute(
        urls["newsletter"],
        "INSERT INTO events SELECT * FROM events WHERE event_id = (SELECT MIN(event_id) FROM events)",
        "UPDATE subscribers SET email = 'no address given' WHERE subscriber_id % 4 = 0",
    )
    execute(
        urls["enrolment"],
        "UPDATE customers SET last_contact_at = '2099-03-04 10:11:12.000000' "
        "WHERE customer_id = (SELECT MIN(customer_id) FROM customers)",
        "ALTER TABLE enrolments DROP COLUMN channel",
    )
    execute(urls["elearning"], "UPDATE progress SET account_id = 999999 WHERE progress_id = 1")
    before = row_counts(urls)

    result = run_daily(ANCHOR, confirm_large_plan=True)

    assert not result.success
    found = evaluations(result)
    failed = {key: e.severity for key, e in found.items() if not e.passed}
    assert failed == {
        ("snapshot/newsletter", KEYS): dg.AssetCheckSeverity.ERROR,
        ("snapshot/enrolment", FUTURE): dg.AssetCheckSeverity.ERROR,
        ("snapshot/newsletter", IDENTIFIERS): dg.AssetCheckSeverity.WARN,
        ("snapshot/elearning", FOREIGN_KEYS): dg.AssetCheckSeverity.WARN,
        ("source_schema/enrolment", COLUMNS_EXIST): dg.AssetCheckSeverity.WARN,
    }
    every_check = {(f"snapshot/{s}", c.name) for s in DEMO_SOURCES for c in SNAPSHOT_CHECKS}
    every_check |= {(f"source_schema/{s}", c.name) for s in DEMO_SOURCES for c in SCHEMA_CHECKS}
    assert every_check <= set(found)
    keys = cast(str, found[("snapshot/newsletter", KEYS)].metadata["failures"].value)
    assert "events" in keys and "expect_column_values_to_be_unique" in keys
    assert "customers" in cast(str, found[("snapshot/enrolment", FUTURE)].metadata["failures"].value)
    assert "enrolments.channel" in cast(
        str, found[("source_schema/enrolment", COLUMNS_EXIST)].metadata["failures"].value
    )
    assert "progress" in cast(str, found[("snapshot/elearning", FOREIGN_KEYS)].metadata["failures"].value)

    # the blocking failures stopped everything downstream: nothing was planned, applied or recorded
    assert not PLAN_AND_APPLY & started_steps(result)
    assert row_counts(urls) == before
    assert scalar(control, "SELECT COUNT(*) FROM ledger") == 0
    # and they were recorded as alerts by the check step itself, without waiting for the sensor
    engine = make_engine(control)
    try:
        alerts = {a.subject: a for a in recent_alerts(engine) if a.kind == BLOCKING_CHECK}
    finally:
        engine.dispose()
    assert set(alerts) == {"snapshot/newsletter:keys_present_and_unique", "snapshot/enrolment:timestamps_not_in_future"}
    assert all(a.run_id == result.run_id and a.partition_key == ANCHOR.isoformat() for a in alerts.values())

    # the Data Docs of the failing run exist, show the failures, and hold no personal or failing value
    docs = settings.reports_dir() / "data-docs"
    index = (docs / "index.html").read_text(encoding="utf-8")
    assert "snapshot.newsletter.events" in index and "schema.enrolment" in index
    pages = stored_bytes(docs)
    assert any("snapshot/newsletter/events" in name for name in pages)
    files = {**pages, **{f"quality/{k}": v for k, v in stored_bytes(quality_dir()).items()}}
    assert find_leaks(values, files) == []
    assert not any(b"2099-03-04" in data for data in files.values()), "a failing value was rendered"


def test_unreadable_timestamps_and_the_future_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A timestamp the database holds but the snapshot could not read fails `timestamps_parseable`; a row
    written after the as-of day but before now (a nightly run just after midnight, a backfill) is no error."""
    urls, _ = make_estate(tmp_path, monkeypatch)
    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    keyring, _ = load_keyring(demo=False)
    engine = make_engine(urls["elearning"])
    try:
        snap = snapshot_source(engine, config.catalog, "elearning", keyring.subject, config.policy.timezone)
        frame = snap["accounts"].frame
        filled = frame["last_login_at"].notna()
        frame.loc[filled[filled].index[:3], "last_login_at"] = pd.NaT  # what an unparseable value becomes
        long_after = dt.datetime.combine(ANCHOR + dt.timedelta(days=400), dt.time(12), tzinfo=dt.UTC)
        run = check_snapshot(
            config, "elearning", snap, engine, ANCHOR - dt.timedelta(days=300), run_name="test", now=long_after
        )
    finally:
        engine.dispose()
    parseable = run.outcomes[PARSEABLE]
    assert not parseable.passed
    assert [(f.table, f.column, f.unexpected) for f in parseable.findings] == [("accounts", "parsed:last_login_at", 3)]
    assert run.outcomes[FUTURE].passed, "rows newer than a past as-of day are not in the future"
    assert run.outcomes[KEYS].passed
    bound = future_bound(ANCHOR, config.policy.timezone, long_after)
    assert bound == pd.Timestamp(long_after) + pd.Timedelta(CLOCK_SKEW)
    early = dt.datetime.combine(ANCHOR, dt.time(8), tzinfo=dt.UTC)
    assert future_bound(ANCHOR, config.policy.timezone, early) == pd.Timestamp(
        "2025-06-01 22:00", tz="UTC"
    ) + pd.Timedelta(CLOCK_SKEW)


@pytest.mark.servers
def test_identifier_verdicts_are_the_same_sql_on_every_backend(databases: ServerDatabases) -> None:
    """The well-formedness of identifiers is judged inside the database (only 1/0 come back), so the SQL must
    mean the same on SQLite, PostgreSQL and MariaDB."""
    url = databases.new_url("enrolment")
    generate_demo_estate({"enrolment": url}, people=40, seed=SEED, anchor=ANCHOR)
    execute(
        url,
        "UPDATE customers SET email = 'no address given' WHERE customer_id % 4 = 0",
        "UPDATE customers SET phone = '12' WHERE customer_id % 3 = 0 AND phone IS NOT NULL",
    )
    bad_emails = scalar(url, "SELECT COUNT(*) FROM customers WHERE customer_id % 4 = 0")
    bad_phones = scalar(url, "SELECT COUNT(*) FROM customers WHERE phone = '12'")
    assert bad_emails and bad_phones
    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    engine = make_engine(url)
    try:
        flags = source_flags(engine, "customers", config.catalog.table("enrolment", "customers"), [])
    finally:
        engine.dispose()
    assert flags is not None
    verdicts = {col: (int((flags[col] == 0).sum()), int(flags[col].notna().sum())) for col in flags if col != "pk"}
    filled_emails = scalar(url, "SELECT COUNT(email) FROM customers")
    filled_phones = scalar(url, "SELECT COUNT(phone) FROM customers")
    filled_numbers = scalar(url, "SELECT COUNT(customer_number) FROM customers")
    assert verdicts == {
        "well_formed:email": (bad_emails, filled_emails),
        "well_formed:phone": (bad_phones, filled_phones),
        "well_formed:customer_number": (0, filled_numbers),
    }

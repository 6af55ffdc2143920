"""The control database gets its schema from Alembic revisions: a fresh database ends at the newest revision with
exactly the tables of `metadata`, a database already there is left alone cheaply, and processes that start at
the same moment on a fresh database all succeed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from retention.storage import migrate
from retention.storage.migrate import SchemaError, head_revision
from retention.storage.schema import (
    ensure_schema,
    leases,
    ledger,
    ledger_batches,
    ledger_entries,
    ledger_rules,
    legal_holds,
    metadata,
)
from tests.databases import ServerDatabases

pytestmark = pytest.mark.servers

WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())


def differences(engine: sa.Engine) -> list:
    """What Alembic would change to make the database match `metadata` (the ledger view is not reflected)."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def assert_at_head(engine: sa.Engine) -> None:
    assert versions(engine) == [head_revision()]
    assert differences(engine) == []
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == set(metadata.tables) | {"alembic_version"}
    assert inspector.get_view_names() == ["ledger"]


def record_one_entry(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(ledger_rules.insert(), {"purpose": "p", "rule": "p: 3 years", "legal_basis": "b"})
        conn.execute(
            ledger_batches.insert(),
            {"batch_id": "a", "run_id": "r", "as_of": WHEN.date(), "source": "crm", "table_name": "people"}
            | {"key_id": "k1", "applied_at": WHEN, "status": "done"},
        )
        conn.execute(
            ledger_entries.insert(),
            {"batch_no": 1, "rule_id": 1, "pk": "7", "subject": "s", "action": "delete", "fields": ""},
        )


def test_a_fresh_database_is_upgraded_to_the_newest_revision(databases: ServerDatabases) -> None:
    engine = sa.create_engine(databases.new_url("fresh"))
    try:
        ensure_schema(engine)
        assert head_revision() == "0004"
        assert_at_head(engine)
        tables = sa.inspect(engine).get_table_names()
        assert "shared_tokens" in tables and "leases" in tables and "request_locks" not in tables
        record_one_entry(engine)
        with engine.connect() as conn:
            row = conn.execute(sa.select(ledger.c.pk, ledger.c.batch_id, ledger.c.rule, ledger.c.status)).one()
        assert tuple(row) == ("7", "a", "p: 3 years", "done")
    finally:
        engine.dispose()


def test_request_locks_of_the_previous_revision_give_way_to_leases(databases: ServerDatabases) -> None:
    """A database at 0002 holding a request lock: the lock belonged to a run of the old version and goes with
    its table; the leases start empty and the database matches `metadata`."""
    engine = sa.create_engine(databases.new_url("locks"))
    try:
        with engine.connect() as conn:
            command.upgrade(migrate.alembic_config(conn), "0002")
            conn.commit()
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO request_locks (lock_key, owner, acquired_at) VALUES ('s1', 'request:4', '2026-01-01')"
            )
        ensure_schema(engine)
        assert_at_head(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(leases)).scalar() == 0
    finally:
        engine.dispose()


def count_statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_rest: seen.append(sql))
    return seen


def test_ensure_schema_at_the_newest_revision_changes_nothing_and_reads_once(databases: ServerDatabases) -> None:
    url = databases.new_url("again")
    engine = sa.create_engine(url)
    other = sa.create_engine(url)
    try:
        ensure_schema(engine)
        record_one_entry(engine)
        seen = count_statements(engine)
        ensure_schema(engine)
        assert seen == []  # remembered for this engine: not even a read

        with other.connect():
            pass  # the dialect's own first-connect queries are not ensure_schema's
        seen_by_other = count_statements(other)
        ensure_schema(other)
        assert len(seen_by_other) == 1 and "alembic_version" in seen_by_other[0]
        ensure_schema(other)
        assert len(seen_by_other) == 1

        assert_at_head(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.select(ledger.c.pk)).scalars().all() == ["7"]
    finally:
        engine.dispose()
        other.dispose()


def test_a_database_written_before_revisions_keeps_its_rows(databases: ServerDatabases) -> None:
    """Current tables but no `alembic_version`: what `create_all` left before revisions existed."""
    engine = sa.create_engine(databases.new_url("before"))
    try:
        metadata.tables["legal_holds"].create(engine)
        metadata.tables["subject_tokens"].create(engine)
        with engine.begin() as conn:
            conn.execute(legal_holds.insert(), {"subject": "s1", "reason": "claim", "placed_at": WHEN})
        ensure_schema(engine)
        assert_at_head(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.select(legal_holds.c.subject, legal_holds.c.reason)).all() == [("s1", "claim")]
    finally:
        engine.dispose()


def test_a_database_from_a_newer_version_is_refused(databases: ServerDatabases) -> None:
    engine = sa.create_engine(databases.new_url("newer"))
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        later = sa.create_engine(engine.url)
        with pytest.raises(SchemaError, match=r"revision 9999.*newer version"):
            ensure_schema(later)
        later.dispose()
        assert versions(engine) == ["9999"]
    finally:
        engine.dispose()


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    from retention.storage.engines import control_engine
    from retention.storage.schema import ensure_schema

    url, gate, me, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    engine = control_engine(url)
    (gate / me).touch()
    deadline = time.monotonic() + 60
    while len(list(gate.iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.001)
    ensure_schema(engine)
    engine.dispose()
    """
)


def test_processes_upgrading_a_fresh_database_at_once_all_succeed(databases: ServerDatabases, tmp_path: Path) -> None:
    url = databases.new_url("race")
    count = 3
    gate = tmp_path / "gate"
    gate.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, str(gate), str(n), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    outcomes = [(racer.wait(timeout=120), racer.communicate()[1]) for racer in racers]
    assert [code for code, _ in outcomes] == [0] * count, "\n".join(err for _, err in outcomes)
    engine = sa.create_engine(url)
    try:
        assert_at_head(engine)
    finally:
        engine.dispose()


def test_a_failure_from_losing_the_race_is_accepted_once_the_database_is_at_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the lock not serialise two upgrades, the loser's error is accepted when the winner got to head,
    and raised when it did not (the same code on every backend, so SQLite only)."""
    real_upgrade = migrate._upgrade

    def upgraded_by_another(engine: sa.Engine) -> None:
        real_upgrade(engine)
        raise sa.exc.IntegrityError("CREATE TABLE alembic_version", None, Exception("already exists"))

    monkeypatch.setattr(migrate, "_upgrade", upgraded_by_another)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'won.db'}")
    ensure_schema(engine)
    assert_at_head(engine)

    def failed(engine: sa.Engine) -> None:
        raise sa.exc.OperationalError("CREATE TABLE ledger_batches", None, Exception("disk I/O error"))

    monkeypatch.setattr(migrate, "_upgrade", failed)
    with pytest.raises(sa.exc.OperationalError):
        ensure_schema(sa.create_engine(f"sqlite:///{tmp_path / 'lost.db'}"))

"""The daily plan does not carry the ledger's finished deletions with it: a row the application writes again
under a key the engine once deleted is planned afresh and deleted again when it is due (on SQLite, PostgreSQL
and MariaDB), and what the plan reads of the ledger does not grow with those deletions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.storage.control import load_done
from tests.databases import ServerDatabases
from tests.requests_support import ANCHOR, apply_day, contents, demo_estate

pytestmark = pytest.mark.servers


def _deleted(control_url: str, table: str) -> list[str]:
    from retention.storage.schema import ledger

    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            query = sa.select(ledger.c.pk).where(ledger.c.table_name == table, ledger.c.action == "delete")
            return [str(pk) for pk in conn.execute(query).scalars()]
    finally:
        engine.dispose()


def test_a_row_written_again_under_a_deleted_key_is_deleted_again(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=30, seed=17)
    before = contents(demo.urls["newsletter"])["events"]
    apply_day(demo, ANCHOR)
    deleted = _deleted(demo.control_url, "events")
    assert deleted, "the demo's first day deletes old newsletter events"
    again = min(int(pk) for pk in deleted)
    control = sa.create_engine(demo.control_url)
    try:
        done = load_done(control)
        assert not {pk for pk, _ in done.get(("newsletter", "events"), set())} & set(deleted)

        engine = sa.create_engine(demo.urls["newsletter"])
        events = sa.Table("events", sa.MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            conn.execute(events.insert().values(dict(zip(events.columns.keys(), before[again], strict=True))))
        engine.dispose()

        apply_day(demo, ANCHOR + dt.timedelta(days=1))
        assert again not in contents(demo.urls["newsletter"])["events"]
        assert _deleted(demo.control_url, "events").count(str(again)) == 2
    finally:
        control.dispose()

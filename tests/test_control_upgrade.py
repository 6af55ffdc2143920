"""A control database written by the version that kept batch status on every ledger row is upgraded in place."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from retention.control import ensure_schema, ledger, ledger_batches
from tests.databases import ServerDatabases

pytestmark = pytest.mark.servers


def old_ledger(engine: sa.Engine) -> sa.Table:
    """The earlier ledger: this one's columns plus `status`, and an index on subject."""
    md = sa.MetaData()
    table = ledger.to_metadata(md)
    table.append_column(sa.Column("status", sa.String(10), nullable=False))
    sa.Index("ix_ledger_subject", table.c.subject)
    md.create_all(engine)
    return table


def test_status_moves_to_one_row_per_batch_and_every_ledger_row_stays(databases: ServerDatabases) -> None:
    engine = sa.create_engine(databases.new_url("upgrade"))
    try:
        table = old_ledger(engine)
        common = {
            "run_id": "r", "as_of": dt.date(2026, 1, 1), "rule": "rule", "purpose": "p", "legal_basis": "b",
            "source": "crm", "table_name": "people", "subject": "s", "action": "delete", "fields": "",
            "key_id": "k1", "applied_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        }  # fmt: skip
        with engine.begin() as conn:
            conn.execute(
                table.insert(),
                [
                    {**common, "pk": "1", "batch_id": "a", "status": "done"},
                    {**common, "pk": "2", "batch_id": "a", "status": "done"},
                    {**common, "pk": "3", "batch_id": "b", "status": "pending"},
                ],
            )
        ensure_schema(engine)
        ensure_schema(engine)  # a second time changes nothing
        inspector = sa.inspect(engine)
        assert "status" not in {c["name"] for c in inspector.get_columns("ledger")}
        assert "ix_ledger_subject" not in {i["name"] for i in inspector.get_indexes("ledger")}
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.select(ledger.c.pk, ledger.c.batch_id)).all()) == [
                ("1", "a"),
                ("2", "a"),
                ("3", "b"),
            ]
            batches = conn.execute(sa.select(ledger_batches.c.batch_id, ledger_batches.c.status)).all()
            assert sorted(batches) == [("a", "done"), ("b", "pending")]
    finally:
        engine.dispose()

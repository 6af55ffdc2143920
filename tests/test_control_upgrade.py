"""A control database written by an earlier version, with one wide ledger table, is upgraded in place."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from retention.control import ensure_schema, ledger, ledger_batches, ledger_entries
from tests.databases import ServerDatabases

pytestmark = pytest.mark.servers


def wide_ledger(engine: sa.Engine) -> sa.Table:
    """The earlier ledger: every name on every row, the batch's status included."""
    md = sa.MetaData()
    table = sa.Table(
        "ledger",
        md,
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        *(sa.Column(name, sa.String(250), nullable=False) for name in ("run_id", "rule", "purpose", "legal_basis")),
        sa.Column("as_of", sa.Date, nullable=False),
        *(sa.Column(name, sa.String(120), nullable=False) for name in ("source", "table_name", "pk", "subject")),
        *(sa.Column(name, sa.String(120), nullable=False) for name in ("action", "fields", "key_id", "batch_id")),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.UniqueConstraint("source", "table_name", "pk", "purpose", name="uq_ledger_row_purpose"),
        sa.Index("ix_ledger_subject", "subject"),
    )
    md.create_all(engine)
    return table


def test_every_ledger_row_survives_the_split_into_batches_rules_and_entries(databases: ServerDatabases) -> None:
    engine = sa.create_engine(databases.new_url("upgrade"))
    try:
        table = wide_ledger(engine)
        common = {
            "run_id": "r", "as_of": dt.date(2026, 1, 1), "legal_basis": "b", "source": "crm",
            "table_name": "people", "subject": "s", "fields": "", "key_id": "k1",
            "applied_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        }  # fmt: skip
        rows = [
            {**common, "pk": "1", "purpose": "p", "rule": "p: 3 years", "action": "delete", "batch_id": "a"},
            {**common, "pk": "2", "purpose": "p", "rule": "p: 3 years", "action": "delete", "batch_id": "a"},
            {**common, "pk": "3", "purpose": "q", "rule": "q: 1 year", "action": "clear", "batch_id": "b"},
        ]
        with engine.begin() as conn:
            conn.execute(table.insert(), [{**r, "status": "pending" if r["batch_id"] == "b" else "done"} for r in rows])
        ensure_schema(engine)
        ensure_schema(engine)  # a second time changes nothing
        assert "ledger" not in sa.inspect(engine).get_table_names()
        names = ["pk", "purpose", "rule", "action", "batch_id", "run_id", "source", "table_name", "key_id"]
        with engine.connect() as conn:
            after = conn.execute(sa.select(*(ledger.c[n] for n in names)).order_by(ledger.c.entry_id)).all()
            assert [tuple(r) for r in after] == [tuple(row[n] for n in names) for row in rows]
            assert conn.execute(sa.select(ledger.c.as_of).distinct()).scalars().all() == [dt.date(2026, 1, 1)]
            statuses = conn.execute(sa.select(ledger_batches.c.batch_id, ledger_batches.c.status)).all()
            assert sorted(statuses) == [("a", "done"), ("b", "pending")]
            assert conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar_one() == 3
    finally:
        engine.dispose()

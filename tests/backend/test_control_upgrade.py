"""A control database written by an earlier version is upgraded in place: a wide ledger table, or entries that
name their batch by id."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from retention.storage.schema import ensure_schema, ledger, ledger_batches, ledger_entries, ledger_rules
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


def entries_by_batch_id(engine: sa.Engine) -> tuple[sa.Table, sa.Table]:
    """The layout before batches were numbered, with its view."""
    md = sa.MetaData()
    batches = sa.Table(
        "ledger_batches",
        md,
        sa.Column("batch_id", sa.String(36), primary_key=True),
        *(sa.Column(name, sa.String(120), nullable=False) for name in ("run_id", "source", "table_name", "key_id")),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Index("ix_ledger_batches_status", "source", "status"),
    )
    entries = sa.Table(
        "ledger_entries",
        md,
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("rule_id", sa.Integer, nullable=False),
        *(sa.Column(name, sa.String(120), nullable=False) for name in ("pk", "subject", "action", "fields")),
        sa.Index("ix_ledger_entries_batch", "batch_id"),
    )
    md.create_all(engine)
    ledger_rules.create(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE VIEW ledger AS SELECT e.entry_id, e.pk, e.batch_id, b.status FROM ledger_entries e "
            "JOIN ledger_batches b ON b.batch_id = e.batch_id"
        )
    return batches, entries


def test_entries_named_by_batch_id_are_renumbered(databases: ServerDatabases) -> None:
    engine = sa.create_engine(databases.new_url("renumber"))
    try:
        batches, entries = entries_by_batch_id(engine)
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        common = {"run_id": "r", "as_of": dt.date(2026, 1, 1), "source": "crm", "key_id": "k1", "applied_at": when}
        with engine.begin() as conn:
            conn.execute(ledger_rules.insert(), [{"purpose": "p", "rule": "p: 3 years", "legal_basis": "b"}])
            rule_id = conn.execute(sa.select(ledger_rules.c.rule_id)).scalar_one()
            conn.execute(
                batches.insert(),
                [
                    {**common, "batch_id": "zz", "table_name": "people", "status": "done"},
                    {**common, "batch_id": "aa", "table_name": "orders", "status": "pending"},
                ],
            )
            conn.execute(
                entries.insert(),
                [
                    {"batch_id": b, "rule_id": rule_id, "pk": pk, "subject": "s", "action": "delete", "fields": ""}
                    for b, pk in (("zz", "1"), ("zz", "2"), ("aa", "7"))
                ],
            )
        ensure_schema(engine)
        ensure_schema(engine)  # a second time changes nothing
        assert not {"ledger_batches_upgraded", "ledger_entries_upgraded"} & set(sa.inspect(engine).get_table_names())
        names = ["pk", "batch_id", "table_name", "status", "purpose", "rule", "legal_basis", "key_id"]
        with engine.connect() as conn:
            after = conn.execute(sa.select(*(ledger.c[n] for n in names)).order_by(ledger.c.entry_id)).all()
            assert [tuple(r) for r in after] == [
                ("1", "zz", "people", "done", "p", "p: 3 years", "b", "k1"),
                ("2", "zz", "people", "done", "p", "p: 3 years", "b", "k1"),
                ("7", "aa", "orders", "pending", "p", "p: 3 years", "b", "k1"),
            ]
            numbers = conn.execute(sa.select(ledger_batches.c.batch_id).order_by(ledger_batches.c.batch_no)).all()
            assert [n[0] for n in numbers] == ["zz", "aa"]  # numbered in the order of their first entry
    finally:
        engine.dispose()

"""The control database as it stood when schema revisions began, created afresh or converted from what an
earlier version of the engine left.

A database with tables but no `alembic_version` was written before revisions existed, in one of three layouts:
this one (only missing tables are added), one wide `ledger` table with every name on every row, or entries that
named their batch by its id instead of its number. The last two are converted, keeping every row, its order and
each batch's status.

The tables are copied here rather than imported from retention.storage.schema: a revision is history and must
keep creating what it created when later revisions change the schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


_metadata = sa.MetaData()

_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

_ledger_batches = sa.Table(
    "ledger_batches",
    _metadata,
    sa.Column("batch_no", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String(36), nullable=False, unique=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("table_name", sa.String(120), nullable=False),
    sa.Column("key_id", sa.String(20), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Index("ix_ledger_batches_status", "source", "status"),
    sa.Index("ix_ledger_batches_as_of", "as_of"),
)

_ledger_rules = sa.Table(
    "ledger_rules",
    _metadata,
    sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("purpose", sa.String(80), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("legal_basis", sa.String(250), nullable=False),
    sa.UniqueConstraint("purpose", "rule", "legal_basis", name="uq_ledger_rules"),
)

_ledger_entries = sa.Table(
    "ledger_entries",
    _metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_no", sa.Integer, nullable=False),
    sa.Column("rule_id", sa.Integer, nullable=False),
    sa.Column("pk", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(40), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("fields", sa.String(500), nullable=False),
    sa.Index("ix_ledger_entries_batch_no", "batch_no"),
)

sa.Table(
    "legal_holds",
    _metadata,
    sa.Column("hold_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), nullable=False, index=True),
    sa.Column("reason", sa.String(250), nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lifted_at", sa.DateTime(timezone=True)),
)

sa.Table(
    "restrictions",
    _metadata,
    sa.Column("restriction_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), nullable=False, index=True),
    sa.Column("request_id", sa.Integer),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lifted_at", sa.DateTime(timezone=True)),
)

sa.Table(
    "subject_activity",
    _metadata,
    sa.Column("subject", sa.String(40), primary_key=True),
    sa.Column("last_interaction", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "subject_tokens",
    _metadata,
    sa.Column("token", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(40), nullable=False, index=True),
)

sa.Table(
    "subject_requests",
    _metadata,
    sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("identifier_kinds", sa.String(60), nullable=False),
    sa.Column("identifiers", _LONG_TEXT),
    sa.Column("tokens", sa.Text),
    sa.Column("subjects", sa.Text),
    sa.Column("run_id", sa.String(64)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(500)),
    sa.Column("receipt", _LONG_TEXT),
)

sa.Table(
    "request_locks",
    _metadata,
    sa.Column("lock_key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(40), nullable=False, index=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "marketing_suppressions",
    _metadata,
    sa.Column("suppression_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), index=True),
    sa.Column("token", sa.String(40), index=True),
    sa.Column("request_id", sa.Integer, nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
)

sa.Table(
    "replays",
    _metadata,
    sa.Column("replay_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("batches_replayed", sa.Integer, nullable=False),
    sa.Column("batches_already_there", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("mismatched_rows", sa.Integer, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
)

sa.Table(
    "failure_alerts",
    _metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("job_name", sa.String(120), nullable=False),
    sa.Column("partition_key", sa.String(40)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("subject", sa.String(250), nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("notified", sa.Boolean),
    sa.UniqueConstraint("run_id", "kind", "subject", name="uq_failure_alert"),
    sa.Index("ix_failure_alerts_occurred", "occurred_at"),
)

_LEDGER_VIEW = (
    "VIEW ledger AS SELECT e.entry_id, b.run_id, b.as_of, r.rule, r.purpose, r.legal_basis, b.source, "
    "b.table_name, e.pk, e.subject, e.action, e.fields, b.key_id, b.applied_at, b.batch_id, b.status "
    "FROM ledger_entries e JOIN ledger_batches b ON b.batch_no = e.batch_no "
    "JOIN ledger_rules r ON r.rule_id = e.rule_id"
)

_ENTRY_TEXT = ("pk", "subject", "action", "fields")

_PER_BATCH = ("run_id", "as_of", "source", "table_name", "key_id", "applied_at")

_RULE = ("purpose", "rule", "legal_basis")

_WIDE_COLUMNS = ("entry_id", *_RULE, *_PER_BATCH, *_ENTRY_TEXT, "batch_id", "status")


def upgrade() -> None:
    conn = op.get_bind()
    _convert_earlier_layouts(conn)
    _metadata.create_all(conn)  # checks first: an earlier version's database has some of the tables
    if conn.dialect.name == "postgresql":
        sql = "CREATE OR REPLACE " + _LEDGER_VIEW
    else:
        sql = "CREATE " + _LEDGER_VIEW.replace("VIEW ledger", "VIEW IF NOT EXISTS ledger", 1)
    conn.exec_driver_sql(sql)


def downgrade() -> None:
    raise NotImplementedError(
        "the first revision is not undone: it would drop the ledger, the record of every erasure; "
        "to start afresh, drop the control database instead"
    )


def _convert_earlier_layouts(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    tables = inspector.get_table_names()
    if "ledger" in tables:
        _convert_wide(conn)
    elif "ledger_batches" in tables and "batch_no" not in {c["name"] for c in inspector.get_columns("ledger_batches")}:
        _convert_batch_ids(conn)


def _convert_wide(conn: sa.Connection) -> None:
    """One `ledger` table with every name on every row: its rules, batches and entries go to their own
    tables, and the table makes way for the view of the same name."""
    old = sa.Table("ledger", sa.MetaData(), autoload_with=conn)
    _metadata.create_all(conn)
    conn.execute(_ledger_rules.insert().from_select(list(_RULE), sa.select(*(old.c[c] for c in _RULE)).distinct()))
    _copy_wide(conn, sa.select(*(old.c[c] for c in _WIDE_COLUMNS)).subquery())
    old.drop(conn)


def _convert_batch_ids(conn: sa.Connection) -> None:
    """Entries that named their batch by id: both tables are rebuilt with batches numbered. They are copied
    first rather than renamed, because a renamed table keeps its index names, which the new tables need."""
    conn.exec_driver_sql("DROP VIEW IF EXISTS ledger")
    for name in ("ledger_batches", "ledger_entries"):
        conn.exec_driver_sql(f"CREATE TABLE {name}_upgraded AS SELECT * FROM {name}")
        conn.exec_driver_sql(f"DROP TABLE {name}")
    md = sa.MetaData()
    batches = sa.Table("ledger_batches_upgraded", md, autoload_with=conn)
    entries = sa.Table("ledger_entries_upgraded", md, autoload_with=conn)
    _metadata.create_all(conn)
    joined = (
        sa.select(
            *(entries.c[c] for c in ("entry_id", *_ENTRY_TEXT, "batch_id")),
            *(batches.c[c] for c in _PER_BATCH),
            batches.c.status,
            *(_ledger_rules.c[c] for c in ("rule", "purpose", "legal_basis")),
        )
        .join_from(entries, batches, entries.c.batch_id == batches.c.batch_id)
        .join(_ledger_rules, _ledger_rules.c.rule_id == entries.c.rule_id)
    )
    _copy_wide(conn, joined.subquery())
    entries.drop(conn)
    batches.drop(conn)


def _copy_wide(conn: sa.Connection, old: sa.Subquery) -> None:
    """Fill batches and entries from rows that carry everything (the rules are already in `ledger_rules`):
    batches numbered in the order of their first entry, entries in their order."""
    first = sa.func.min(old.c.entry_id)
    conn.execute(
        _ledger_batches.insert().from_select(
            ["batch_id", *_PER_BATCH, "status"],
            sa.select(old.c.batch_id, *(sa.func.min(old.c[c]) for c in _PER_BATCH), sa.func.max(old.c.status))
            .group_by(old.c.batch_id)
            .order_by(first),
        )
    )
    rule = sa.and_(*(_ledger_rules.c[c] == old.c[c] for c in _RULE))
    conn.execute(
        _ledger_entries.insert().from_select(
            ["batch_no", "rule_id", *_ENTRY_TEXT],
            sa.select(_ledger_batches.c.batch_no, _ledger_rules.c.rule_id, *(old.c[c] for c in _ENTRY_TEXT))
            .join_from(old, _ledger_rules, rule)
            .join(_ledger_batches, _ledger_batches.c.batch_id == old.c.batch_id)
            .order_by(old.c.entry_id),
        )
    )

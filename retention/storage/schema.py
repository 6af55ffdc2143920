"""The control database's schema: every table the engine keeps there, in one `MetaData`.

It never stores a raw identifier: rows are named by source, table, primary key and subject key. Readers of
the ledger use the `ledger` view, which joins entries to their batch and rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

MAX_ERROR_CHARS = 500

PENDING = "pending"


DONE = "done"


metadata = sa.MetaData()


ledger_batches = sa.Table(
    "ledger_batches",
    metadata,
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
"""One row per batch: what is the same for all its entries, and whether the source has committed it. Entries
refer to it by `batch_no`: an integer key makes their index a fraction of the size of one on the batch id."""


ledger_rules = sa.Table(
    "ledger_rules",
    metadata,
    sa.Column("rule_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("purpose", sa.String(80), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("legal_basis", sa.String(250), nullable=False),
    sa.UniqueConstraint("purpose", "rule", "legal_basis", name="uq_ledger_rules"),
)
"""Each purpose's rule and legal basis once, rather than on each of millions of entries."""


ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_no", sa.Integer, nullable=False),
    sa.Column("rule_id", sa.Integer, nullable=False),
    sa.Column("pk", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(40), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("fields", sa.String(500), nullable=False),
    sa.Index("ix_ledger_entries_batch_no", "batch_no"),
)
"""One row per action. Kept narrow: at a million actions its width decides what the ledger costs to write."""


view_metadata = sa.MetaData()


ledger = sa.Table(
    "ledger",
    view_metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("as_of", sa.Date),
    sa.Column("rule", sa.String(200)),
    sa.Column("purpose", sa.String(80)),
    sa.Column("legal_basis", sa.String(250)),
    sa.Column("source", sa.String(80)),
    sa.Column("table_name", sa.String(120)),
    sa.Column("pk", sa.String(64)),
    sa.Column("subject", sa.String(40)),
    sa.Column("action", sa.String(20)),
    sa.Column("fields", sa.String(500)),
    sa.Column("key_id", sa.String(20)),
    sa.Column("applied_at", sa.DateTime(timezone=True)),
    sa.Column("batch_id", sa.String(36)),
    sa.Column("status", sa.String(10)),
)
"""The ledger as readers see it, one row per action with everything named: a view over the three tables."""


_LEDGER_VIEW = (
    "VIEW ledger AS SELECT e.entry_id, b.run_id, b.as_of, r.rule, r.purpose, r.legal_basis, b.source, "
    "b.table_name, e.pk, e.subject, e.action, e.fields, b.key_id, b.applied_at, b.batch_id, b.status "
    "FROM ledger_entries e JOIN ledger_batches b ON b.batch_no = e.batch_no "
    "JOIN ledger_rules r ON r.rule_id = e.rule_id"
)


legal_holds = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("hold_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), nullable=False, index=True),
    sa.Column("reason", sa.String(250), nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lifted_at", sa.DateTime(timezone=True)),
)


restrictions = sa.Table(
    "restrictions",
    metadata,
    sa.Column("restriction_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), nullable=False, index=True),
    sa.Column("request_id", sa.Integer),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lifted_at", sa.DateTime(timezone=True)),
)


subject_activity = sa.Table(
    "subject_activity",
    metadata,
    sa.Column("subject", sa.String(40), primary_key=True),
    sa.Column("last_interaction", sa.DateTime(timezone=True), nullable=False),
)


subject_tokens = sa.Table(
    "subject_tokens",
    metadata,
    sa.Column("token", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(40), nullable=False, index=True),
)


def ensure_schema(engine: sa.Engine) -> None:
    _upgrade(engine)
    metadata.create_all(engine)
    if "ledger" not in sa.inspect(engine).get_view_names():
        if engine.dialect.name == "postgresql":
            sql = "CREATE OR REPLACE " + _LEDGER_VIEW
        else:
            sql = "CREATE " + _LEDGER_VIEW.replace("VIEW ledger", "VIEW IF NOT EXISTS ledger", 1)
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)


_ENTRY_TEXT = ("pk", "subject", "action", "fields")


_WIDE_COLUMNS = ["entry_id", "run_id", "as_of", "rule", "purpose", "legal_basis", "source", "table_name", "pk"]
_WIDE_COLUMNS += ["subject", "action", "fields", "key_id", "applied_at", "batch_id", "status"]


def _upgrade(engine: sa.Engine) -> None:
    """Bring a ledger written by an earlier version to the current tables, keeping every row, its order and
    each batch's status. Two earlier layouts exist: one wide `ledger` table with every name on every row, and
    entries that named their batch by its id instead of its number."""
    inspector = sa.inspect(engine)
    tables = inspector.get_table_names()
    if "ledger" in tables:
        old = sa.Table("ledger", sa.MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            metadata.create_all(conn)
            triple = ["purpose", "rule", "legal_basis"]
            conn.execute(ledger_rules.insert().from_select(triple, sa.select(*(old.c[c] for c in triple)).distinct()))
            _copy_wide(conn, sa.select(*(old.c[c] for c in _WIDE_COLUMNS)).subquery())
            old.drop(conn)
    elif "ledger_batches" in tables and "batch_no" not in {c["name"] for c in inspector.get_columns("ledger_batches")}:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP VIEW IF EXISTS ledger")
            for name in ("ledger_batches", "ledger_entries"):  # copies: a renamed table keeps its index names
                conn.exec_driver_sql(f"CREATE TABLE {name}_upgraded AS SELECT * FROM {name}")
                conn.exec_driver_sql(f"DROP TABLE {name}")
            md = sa.MetaData()
            batches = sa.Table("ledger_batches_upgraded", md, autoload_with=conn)
            entries = sa.Table("ledger_entries_upgraded", md, autoload_with=conn)
            metadata.create_all(conn)
            joined = (
                sa.select(
                    *(entries.c[c] for c in ("entry_id", *_ENTRY_TEXT, "batch_id")),
                    *(batches.c[c] for c in ("run_id", "as_of", "source", "table_name", "key_id", "applied_at")),
                    batches.c.status,
                    *(ledger_rules.c[c] for c in ("rule", "purpose", "legal_basis")),
                )
                .join_from(entries, batches, entries.c.batch_id == batches.c.batch_id)
                .join(ledger_rules, ledger_rules.c.rule_id == entries.c.rule_id)
            )
            _copy_wide(conn, joined.subquery())
            entries.drop(conn)
            batches.drop(conn)


def _copy_wide(conn: sa.Connection, old: sa.Subquery) -> None:
    """Fill batches and entries from rows that carry everything (the rules are already in `ledger_rules`):
    batches numbered in the order of their first entry, entries in their order."""
    per_batch = ["run_id", "as_of", "source", "table_name", "key_id", "applied_at"]
    first = sa.func.min(old.c.entry_id)
    conn.execute(
        ledger_batches.insert().from_select(
            ["batch_id", *per_batch, "status"],
            sa.select(old.c.batch_id, *(sa.func.min(old.c[c]) for c in per_batch), sa.func.max(old.c.status))
            .group_by(old.c.batch_id)
            .order_by(first),
        )
    )
    rule = sa.and_(*(ledger_rules.c[c] == old.c[c] for c in ("purpose", "rule", "legal_basis")))
    conn.execute(
        ledger_entries.insert().from_select(
            ["batch_no", "rule_id", *_ENTRY_TEXT],
            sa.select(ledger_batches.c.batch_no, ledger_rules.c.rule_id, *(old.c[c] for c in _ENTRY_TEXT))
            .join_from(old, ledger_rules, rule)
            .join(ledger_batches, ledger_batches.c.batch_id == old.c.batch_id)
            .order_by(old.c.entry_id),
        )
    )


_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


subject_requests = sa.Table(
    "subject_requests",
    metadata,
    sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("identifier_kinds", sa.String(60), nullable=False),
    sa.Column("identifiers", _LONG_TEXT),  # raw, as ASCII JSON; NULL once the request is done
    sa.Column("tokens", sa.Text),  # keyed tokens of the identifiers; NULL once the request is done
    sa.Column("subjects", sa.Text),  # subject keys found, comma-separated
    sa.Column("run_id", sa.String(64)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(500)),
    sa.Column("receipt", _LONG_TEXT),  # JSON, no identifiers
)


request_locks = sa.Table(
    "request_locks",
    metadata,
    sa.Column("lock_key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(40), nullable=False, index=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)


marketing_suppressions = sa.Table(
    "marketing_suppressions",
    metadata,
    sa.Column("suppression_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), index=True),
    sa.Column("token", sa.String(40), index=True),
    sa.Column("request_id", sa.Integer, nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
)


replays = sa.Table(
    "replays",
    metadata,
    sa.Column("replay_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("batches_replayed", sa.Integer, nullable=False, default=0),
    sa.Column("batches_already_there", sa.Integer, nullable=False, default=0),
    sa.Column("rows", sa.Integer, nullable=False, default=0),
    sa.Column("mismatched_rows", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(12), nullable=False),
)


def ensure_request_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


failure_alerts = sa.Table(
    "failure_alerts",
    metadata,
    sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("job_name", sa.String(120), nullable=False),
    sa.Column("partition_key", sa.String(40)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("subject", sa.String(250), nullable=False),
    sa.Column("error", sa.String(MAX_ERROR_CHARS), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("notified", sa.Boolean),
    sa.UniqueConstraint("run_id", "kind", "subject", name="uq_failure_alert"),
    sa.Index("ix_failure_alerts_occurred", "occurred_at"),
)


def ensure_alert_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)

"""The control database's schema: every table the engine keeps there, in one `MetaData`.

It never stores a raw identifier: rows are named by source, table, primary key and subject key. Readers of
the ledger use the `ledger` view, which joins entries to their batch and rule. The database gets this schema
through the revisions in `migrations/` (`ensure_schema`); a change here needs a new revision there, and
tests/backend/test_storage_migrations.py fails until the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from retention.config.limits import LEDGER_FIELDS_CHARS, PURPOSE_NAME_CHARS, SOURCE_NAME_CHARS, TABLE_NAME_CHARS
from retention.storage.migrate import upgrade_to_head

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
    sa.Column("source", sa.String(SOURCE_NAME_CHARS), nullable=False),
    sa.Column("table_name", sa.String(TABLE_NAME_CHARS), nullable=False),
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
    sa.Column("purpose", sa.String(PURPOSE_NAME_CHARS), nullable=False),
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
    sa.Column("fields", sa.String(LEDGER_FIELDS_CHARS), nullable=False),
    sa.Index("ix_ledger_entries_batch_no", "batch_no"),
    sa.Index("ix_ledger_entries_subject", "subject"),
)
"""One row per action. Kept narrow: at a million actions its width decides what the ledger costs to write. A
request reads its person's entries by subject, not the whole history."""


ledger = sa.table(
    "ledger",
    sa.column("entry_id", sa.Integer),
    sa.column("run_id", sa.String(64)),
    sa.column("as_of", sa.Date),
    sa.column("rule", sa.String(200)),
    sa.column("purpose", sa.String(PURPOSE_NAME_CHARS)),
    sa.column("legal_basis", sa.String(250)),
    sa.column("source", sa.String(SOURCE_NAME_CHARS)),
    sa.column("table_name", sa.String(TABLE_NAME_CHARS)),
    sa.column("pk", sa.String(64)),
    sa.column("subject", sa.String(40)),
    sa.column("action", sa.String(20)),
    sa.column("fields", sa.String(LEDGER_FIELDS_CHARS)),
    sa.column("key_id", sa.String(20)),
    sa.column("applied_at", sa.DateTime(timezone=True)),
    sa.column("batch_id", sa.String(36)),
    sa.column("status", sa.String(10)),
)
"""The ledger as readers see it, one row per action with everything named: a view over the three tables,
created by the schema's revisions. A lightweight table, not in `metadata`: `create_all` must not make it a
table, and a comparison of `metadata` with the database must not expect one."""


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

shared_tokens = sa.Table(
    "shared_tokens",
    metadata,
    sa.Column("token", sa.String(40), primary_key=True),
)
"""Weak identifier tokens that would join different people: they point at nobody (`daily.subjects`)."""


subject_rows = sa.Table(
    "subject_rows",
    metadata,
    sa.Column("source", sa.String(SOURCE_NAME_CHARS), primary_key=True),
    sa.Column("table_name", sa.String(TABLE_NAME_CHARS), primary_key=True),
    sa.Column("pk", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(40), nullable=False),
    sa.Index("ix_subject_rows_subject", "subject"),
)
"""The subject of each row of the tables that carry identifiers, as the daily run's index last saw it: a request
finds its person's rows here by subject key instead of reading those tables whole."""


index_marks = sa.Table(
    "index_marks",
    metadata,
    sa.Column("source", sa.String(SOURCE_NAME_CHARS), primary_key=True),
    sa.Column("table_name", sa.String(TABLE_NAME_CHARS), primary_key=True),
    sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=False),
)
"""When the snapshot behind a table's `subject_rows` began: rows changed since then are read by their change
column. No mark, no use of the index for that table (never indexed, or its source was restored)."""


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


leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
"""Who may write what now (`retention.storage.leases`): the daily run, a source's writes, a request, a person."""


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
    sa.Column("source", sa.String(SOURCE_NAME_CHARS), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("batches_replayed", sa.Integer, nullable=False, default=0),
    sa.Column("batches_already_there", sa.Integer, nullable=False, default=0),
    sa.Column("rows", sa.Integer, nullable=False, default=0),
    sa.Column("mismatched_rows", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(12), nullable=False),
)


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


def ensure_schema(engine: sa.Engine) -> None:
    """Bring the control database to the newest schema revision: create it when empty, convert one an earlier
    version wrote. Called before every use, so it costs nothing once this process has seen the database at the
    newest revision, and one read of `alembic_version` the first time."""
    upgrade_to_head(engine)

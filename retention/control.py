"""The control database: the ledger of what was done, holds, and (later) subject requests.

It never stores a raw identifier: rows are named by source, table, primary key and subject key.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from retention.planning import Holds
from retention.subjects import TableId

metadata = sa.MetaData()

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(80), nullable=False),
    sa.Column("legal_basis", sa.String(250), nullable=False),
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("table_name", sa.String(120), nullable=False),
    sa.Column("pk", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(40), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("fields", sa.String(500), nullable=False),
    sa.Column("key_id", sa.String(20), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("source", "table_name", "pk", "purpose", name="uq_ledger_row_purpose"),
    sa.Index("ix_ledger_subject", "subject"),
    sa.Index("ix_ledger_as_of", "as_of"),
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


def ensure_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def load_holds(engine: sa.Engine) -> Holds:
    with engine.connect() as conn:
        restricted = conn.execute(sa.select(restrictions.c.subject).where(restrictions.c.lifted_at.is_(None)))
        claims = conn.execute(sa.select(legal_holds.c.subject).where(legal_holds.c.lifted_at.is_(None)))
        return Holds(restricted=frozenset(r[0] for r in restricted), legal_claim=frozenset(r[0] for r in claims))


def load_done(engine: sa.Engine) -> dict[TableId, set[tuple[str, str]]]:
    """(pk, purpose) pairs the ledger records per table: the work that is already done."""
    done: dict[TableId, set[tuple[str, str]]] = defaultdict(set)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ledger.c.source, ledger.c.table_name, ledger.c.pk, ledger.c.purpose))
        for source, table, pk, purpose in rows:
            done[(source, table)].add((pk, purpose))
    return done

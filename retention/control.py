"""The control database: the ledger of what was done, holds, and what earlier runs remember of people.

It never stores a raw identifier: rows are named by source, table, primary key and subject key. A batch's
ledger rows are written, with the batch 'pending' in `ledger_batches`, before the batch touches the source;
the batch is set 'done' after the source committed. See `retention.applying` for how a crash in between is
repaired.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import sqlalchemy as sa

from retention.planning import Holds
from retention.subjects import TableId

PENDING = "pending"
DONE = "done"

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
    sa.Column("batch_id", sa.String(36), nullable=False),
    sa.UniqueConstraint("source", "table_name", "pk", "purpose", name="uq_ledger_row_purpose"),
    sa.Index("ix_ledger_batch", "batch_id"),
    sa.Index("ix_ledger_as_of", "as_of"),
)

ledger_batches = sa.Table(
    "ledger_batches",
    metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Index("ix_ledger_batches_status", "source", "status"),
)
"""One row per batch, so a batch is finished by changing one row rather than all of its ledger rows."""

ledger_with_status = ledger.join(ledger_batches, ledger.c.batch_id == ledger_batches.c.batch_id)

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
    metadata.create_all(engine)
    _upgrade(engine)


def _upgrade(engine: sa.Engine) -> None:
    """Bring a control database written by an earlier version to this schema, keeping every ledger row."""
    inspector = sa.inspect(engine)
    if "ix_ledger_subject" in {i["name"] for i in inspector.get_indexes("ledger")}:
        # no query looks ledger rows up by subject, and its random inserts made every ledger write slower
        with engine.begin() as conn:
            detached = sa.Table("ledger", sa.MetaData(), sa.Column("subject", sa.String(40)))
            sa.Index("ix_ledger_subject", detached.c.subject).drop(conn)
    if "status" in {c["name"] for c in inspector.get_columns("ledger")}:
        _move_status_to_batches(engine)


def _move_status_to_batches(engine: sa.Engine) -> None:
    """Control databases written before `ledger_batches` kept each batch's status on every ledger row: move it
    to one row per batch."""
    with engine.begin() as conn:
        conn.execute(
            ledger_batches.insert().from_select(
                ["batch_id", "source", "status"],
                sa.select(ledger.c.batch_id, sa.func.min(ledger.c.source), sa.func.max(sa.column("status")))
                .select_from(ledger)
                .group_by(ledger.c.batch_id),
            )
        )
        conn.exec_driver_sql("ALTER TABLE ledger DROP COLUMN status")


def load_holds(engine: sa.Engine) -> Holds:
    with engine.connect() as conn:
        restricted = conn.execute(sa.select(restrictions.c.subject).where(restrictions.c.lifted_at.is_(None)))
        claims = conn.execute(sa.select(legal_holds.c.subject).where(legal_holds.c.lifted_at.is_(None)))
        return Holds(restricted=frozenset(r[0] for r in restricted), legal_claim=frozenset(r[0] for r in claims))


def load_activity(engine: sa.Engine) -> pd.Series:
    """The latest interaction ever seen per subject: deleting old rows (e.g. 13-month-old newsletter opens)
    must not move a person's last interaction back in time and make their other data due."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(subject_activity.c.subject, subject_activity.c.last_interaction)).all()
    series = pd.Series({s: t for s, t in rows}, dtype=object, name="last_interaction")
    return pd.to_datetime(series, utc=True).astype("datetime64[us, UTC]")


def save_activity(engine: sa.Engine, latest: pd.Series, remembered: pd.Series) -> None:
    """Store subjects whose latest interaction is new or later than remembered."""
    latest = latest.dropna()
    before = remembered.reindex(latest.index)
    new = latest[before.isna()]
    later = latest[before.notna() & (latest > before)]
    with engine.begin() as conn:
        if len(new):
            conn.execute(
                subject_activity.insert(),
                [{"subject": s, "last_interaction": t.to_pydatetime()} for s, t in new.items()],
            )
        if len(later):
            conn.execute(
                subject_activity.update()
                .where(subject_activity.c.subject == sa.bindparam("_s"))
                .values(last_interaction=sa.bindparam("_t")),
                [{"_s": s, "_t": t.to_pydatetime()} for s, t in later.items()],
            )


def load_token_subjects(engine: sa.Engine) -> dict[str, str]:
    """Identifier token -> subject key from earlier runs (keyed tokens only, never raw identifiers)."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(subject_tokens.c.token, subject_tokens.c.subject)).all())


def save_token_subjects(engine: sa.Engine, current: dict[str, str], remembered: dict[str, str]) -> None:
    """Remember each token's subject, so a person keeps their subject key when rows come and go."""
    new = [{"token": t, "subject": s} for t, s in current.items() if t not in remembered]
    moved = [{"_t": t, "_s": s} for t, s in current.items() if t in remembered and remembered[t] != s]
    with engine.begin() as conn:
        for start in range(0, len(new), 10_000):
            conn.execute(subject_tokens.insert(), new[start : start + 10_000])
        if moved:
            conn.execute(
                subject_tokens.update()
                .where(subject_tokens.c.token == sa.bindparam("_t"))
                .values(subject=sa.bindparam("_s")),
                moved,
            )


def load_known_subjects(engine: sa.Engine) -> dict[TableId, pd.DataFrame]:
    """Rows the ledger changed but kept, with the subject they had then and the fields changed (pk as text)."""
    query = sa.select(ledger.c.source, ledger.c.table_name, ledger.c.pk, ledger.c.subject, ledger.c.fields).where(
        ledger.c.action != "delete"
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=["source", "table", "pk", "subject", "fields"])
    known: dict[TableId, pd.DataFrame] = {}
    for (source, table), group in frame.groupby(["source", "table"]):
        merged = group.groupby("pk").agg(
            subject=("subject", "first"), fields=("fields", lambda v: frozenset(",".join(v).split(",")))
        )
        known[(source, table)] = merged.reset_index()
    return known


def load_done(engine: sa.Engine) -> dict[TableId, set[tuple[str, str]]]:
    """(pk, purpose) pairs the ledger records per table, pending or done: work that needs no new plan entry
    (a pending entry is finished by the apply step's recovery)."""
    done: dict[TableId, set[tuple[str, str]]] = defaultdict(set)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ledger.c.source, ledger.c.table_name, ledger.c.pk, ledger.c.purpose))
        for source, table, pk, purpose in rows:
            done[(source, table)].add((pk, purpose))
    return done

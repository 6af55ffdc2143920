"""What the control database remembers between runs: holds, activity, identifier tokens, the ledger's work."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from retention.config.catalog import TableId
from retention.rules.holds import Holds
from retention.storage.frames import rows_frame
from retention.storage.schema import (
    DONE,
    ledger,
    legal_holds,
    restrictions,
    shared_tokens,
    subject_activity,
    subject_tokens,
)


def insert_new(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert the rows whose key is not there yet: a request and the daily run may remember the same token or
    subject at the same moment, and either one's row is right."""
    if not rows:
        return
    name = conn.dialect.name
    statement: sa.Insert
    if name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    elif name == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:
        statement = table.insert().prefix_with("IGNORE")
    for start in range(0, len(rows), 10_000):
        conn.execute(statement, rows[start : start + 10_000])


def upsert(conn: sa.Connection, table: sa.Table, row: Mapping[str, object]) -> None:
    """Insert the row, or set its other columns where its key is there already: two runs may write the same
    key at the same moment, and a delete-then-insert would let the second fail on the first one's row."""
    keys = [c.name for c in table.primary_key.columns]
    others = {name: value for name, value in row.items() if name not in keys}
    name = conn.dialect.name
    if name == "postgresql":
        pg = postgresql.insert(table).values(**row)
        conn.execute(pg.on_conflict_do_update(index_elements=keys, set_=others))
    elif name == "sqlite":
        lite = sqlite.insert(table).values(**row)
        conn.execute(lite.on_conflict_do_update(index_elements=keys, set_=others))
    else:
        conn.execute(mysql.insert(table).values(**row).on_duplicate_key_update(**others))


def select_among(
    engine: sa.Engine, query: sa.Select, column: sa.ColumnElement, among: Collection[str] | None
) -> list[sa.Row]:
    """All rows of the query, or those whose `column` is among the values (in chunks every backend takes)."""
    with engine.connect() as conn:
        if among is None:
            return list(conn.execute(query).all())
        listed = sorted(among)
        return [
            row
            for start in range(0, len(listed), 1000)
            for row in conn.execute(query.where(column.in_(listed[start : start + 1000])))
        ]


def load_holds(engine: sa.Engine) -> Holds:
    with engine.connect() as conn:
        restricted = conn.execute(sa.select(restrictions.c.subject).where(restrictions.c.lifted_at.is_(None)))
        claims = conn.execute(sa.select(legal_holds.c.subject).where(legal_holds.c.lifted_at.is_(None)))
        return Holds(restricted=frozenset(r[0] for r in restricted), legal_claim=frozenset(r[0] for r in claims))


def load_activity(engine: sa.Engine, subjects: Collection[str] | None = None) -> pd.Series:
    """The latest interaction ever seen per subject (of the given ones): deleting old rows (e.g. 13-month-old
    newsletter opens) must not move a person's last interaction back in time and make their other data due."""
    query = sa.select(subject_activity.c.subject, subject_activity.c.last_interaction)
    rows = select_among(engine, query, subject_activity.c.subject, subjects)
    series = pd.Series({s: t for s, t in rows}, dtype=object, name="last_interaction")
    return pd.to_datetime(series, utc=True).astype("datetime64[us, UTC]")


def save_activity(engine: sa.Engine, latest: pd.Series, remembered: pd.Series) -> None:
    """Store subjects whose latest interaction is new or later than remembered (never moved back, whoever else
    writes at the same time)."""
    latest = latest.dropna()
    before = remembered.reindex(latest.index)
    new = latest[before.isna()]
    later = latest[before.notna() & (latest > before)]
    with engine.begin() as conn:
        insert_new(
            conn, subject_activity, [{"subject": s, "last_interaction": t.to_pydatetime()} for s, t in new.items()]
        )
        if len(later):
            conn.execute(
                subject_activity.update()
                .where(
                    subject_activity.c.subject == sa.bindparam("_s"),
                    subject_activity.c.last_interaction < sa.bindparam("_t"),
                )
                .values(last_interaction=sa.bindparam("_t")),
                [{"_s": s, "_t": t.to_pydatetime()} for s, t in later.items()],
            )


def load_token_subjects(engine: sa.Engine, tokens: Collection[str] | None = None) -> dict[str, str]:
    """Identifier token -> subject key from earlier runs (keyed tokens only, never raw identifiers), of all
    tokens or the given ones."""
    query = sa.select(subject_tokens.c.token, subject_tokens.c.subject)
    return {token: subject for token, subject in select_among(engine, query, subject_tokens.c.token, tokens)}


def shared_among(conn: sa.Connection, tokens: Collection[str]) -> set[str]:
    """Which of the tokens are weak ones that several people share."""
    listed, found = sorted(tokens), set()
    for start in range(0, len(listed), 1000):
        chunk = listed[start : start + 1000]
        found |= set(conn.execute(sa.select(shared_tokens.c.token).where(shared_tokens.c.token.in_(chunk))).scalars())
    return found


def save_token_subjects(
    engine: sa.Engine, current: dict[str, str], remembered: dict[str, str], shared: Collection[str] = ()
) -> None:
    """Remember each token's subject, so a person keeps their subject key when rows come and go, and the weak
    tokens several people share: they point at nobody from then on (kept as shared even if they stop being,
    since a restored backup may still hold them)."""
    new = [{"token": t, "subject": s} for t, s in current.items() if t not in remembered]
    moved = [{"_t": t, "_s": s} for t, s in current.items() if t in remembered and remembered[t] != s]
    with engine.begin() as conn:
        added = sorted(set(shared) - shared_among(conn, shared))
        insert_new(conn, shared_tokens, [{"token": t} for t in added])
        stale = sorted(t for t in shared if t in remembered and t not in current)
        for start in range(0, len(stale), 1000):
            conn.execute(subject_tokens.delete().where(subject_tokens.c.token.in_(stale[start : start + 1000])))
        insert_new(conn, subject_tokens, new)
        if moved:
            conn.execute(
                subject_tokens.update()
                .where(subject_tokens.c.token == sa.bindparam("_t"))
                .values(subject=sa.bindparam("_s")),
                moved,
            )


def load_known_subjects(engine: sa.Engine, subjects: Collection[str] | None = None) -> dict[TableId, pd.DataFrame]:
    """Rows the ledger changed but kept, with the subject they had then and the fields changed (pk as text);
    all of them, or those of the given subjects (a request reads only its person's history)."""
    query = sa.select(ledger.c.source, ledger.c.table_name, ledger.c.pk, ledger.c.subject, ledger.c.fields).where(
        ledger.c.action != "delete"
    )
    frame = rows_frame(
        select_among(engine, query, ledger.c.subject, subjects), ["source", "table", "pk", "subject", "fields"]
    )
    known: dict[TableId, pd.DataFrame] = {}
    for (source, table), group in frame.groupby(["source", "table"]):
        merged = group.groupby("pk").agg(
            subject=("subject", "first"), fields=("fields", lambda v: frozenset(",".join(v).split(",")))
        )
        known[(source, table)] = merged.reset_index()
    return known


def load_done(engine: sa.Engine, subjects: Collection[str] | None = None) -> dict[TableId, set[tuple[str, str]]]:
    """(pk, purpose) pairs the ledger records per table, pending or done, of all rows or the given subjects':
    work that needs no new plan entry (a pending entry is finished by the apply step's recovery).

    A finished deletion is left out: its row is gone, so no plan meets it again, and those entries are what
    grows day after day (a row the application inserts again under the same key is planned afresh)."""
    done: dict[TableId, set[tuple[str, str]]] = defaultdict(set)
    query = sa.select(ledger.c.source, ledger.c.table_name, ledger.c.pk, ledger.c.purpose).where(
        sa.or_(ledger.c.action != "delete", ledger.c.status != DONE)
    )
    for source, table, pk, purpose in select_among(engine, query, ledger.c.subject, subjects):
        done[(source, table)].add((pk, purpose))
    return done

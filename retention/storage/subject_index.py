"""The subject index kept in the control database: which subject each row of the identifier tables belongs to,
and when the snapshot behind it began. The daily run writes what changed; a request reads its person's rows.

Keys are the ledger's text of a row key (`str(pk)`; a composite key's JSON), subjects are subject keys: no raw
identifier is stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

import pandas as pd
import sqlalchemy as sa

from retention.config.catalog import TableId
from retention.rules.calendar import utc
from retention.storage.control import insert_new, select_among, upsert
from retention.storage.schema import index_marks, subject_rows

CHUNK = 1000


def save_subject_rows(
    engine: sa.Engine, rows: Mapping[TableId, pd.Series], taken_at: Mapping[TableId, dt.datetime]
) -> None:
    """Store each table's pk -> subject as the index saw it, writing only the differences, and the moment its
    snapshot began; one transaction per table, so a request sees a table's index before or after, never half.
    Two writers at once leave the later one's marks: at worst an earlier moment, which only reads more rows."""
    for (source, table), series in rows.items():
        current = pd.Series(series.to_numpy(), index=series.index.map(str), dtype=object)
        where = (subject_rows.c.source == source) & (subject_rows.c.table_name == table)
        with engine.begin() as conn:
            stored = pd.Series(
                dict(conn.execute(sa.select(subject_rows.c.pk, subject_rows.c.subject).where(where)).all()),
                dtype=object,
            )
            gone = stored.index.difference(current.index).tolist()
            for start in range(0, len(gone), CHUNK):
                conn.execute(subject_rows.delete().where(where, subject_rows.c.pk.in_(gone[start : start + CHUNK])))
            before = stored.reindex(current.index)
            moved = current[before.notna() & (before != current)]
            if len(moved):
                conn.execute(
                    subject_rows.update()
                    .where(where, subject_rows.c.pk == sa.bindparam("_pk"))
                    .values(subject=sa.bindparam("_s")),
                    [{"_pk": pk, "_s": s} for pk, s in moved.items()],
                )
            new = current[before.isna()]
            insert_new(
                conn,
                subject_rows,
                [{"source": source, "table_name": table, "pk": pk, "subject": s} for pk, s in new.items()],
            )
            upsert(conn, index_marks, {"source": source, "table_name": table, "snapshot_at": taken_at[(source, table)]})


def load_marks(engine: sa.Engine) -> dict[TableId, dt.datetime]:
    """When the snapshot behind each indexed table began (UTC)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(index_marks.c.source, index_marks.c.table_name, index_marks.c.snapshot_at))
        return {(s, t): utc(at) for s, t, at in rows}


def forget_source(engine: sa.Engine, source: str) -> None:
    """Stop using the index of a source whose rows no longer match it (a restored backup): requests read its
    tables whole until the next daily run indexes them again."""
    with engine.begin() as conn:
        conn.execute(index_marks.delete().where(index_marks.c.source == source))


def indexed_rows(engine: sa.Engine, subjects: Collection[str], tables: Collection[TableId]) -> dict[TableId, list[str]]:
    """The row keys (as text) the index gives the subjects, per table asked for."""
    found: dict[TableId, list[str]] = {tid: [] for tid in tables}
    query = sa.select(subject_rows.c.source, subject_rows.c.table_name, subject_rows.c.pk)
    for source, table, pk in select_among(engine, query, subject_rows.c.subject, subjects):
        if (source, table) in found:
            found[(source, table)].append(pk)
    return {tid: sorted(pks) for tid, pks in found.items()}


def indexed_subjects(engine: sa.Engine, table: TableId, pks: Collection[str]) -> set[str]:
    """The subjects the index gives these rows of one table."""
    query = sa.select(subject_rows.c.subject).where(
        subject_rows.c.source == table[0], subject_rows.c.table_name == table[1]
    )
    return {row.subject for row in select_among(engine, query, subject_rows.c.pk, pks)}

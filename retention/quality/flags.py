"""Per-row flags decided inside the source database, so that only keys and 1/0 leave it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retention.config.catalog import IdentifierKind, TableEntry
from retention.storage.frames import rows_frame
from retention.storage.row_keys import RowKey

FLAG_CHUNK_ROWS = 50_000


def _digits(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The number of ASCII digits in a text column, in SQL every backend speaks (a digit is one byte)."""
    total: sa.ColumnElement[Any] = sa.literal(0)
    for digit in "0123456789":
        total = total + (sa.func.length(column) - sa.func.length(sa.func.replace(column, digit, "")))
    return total


def well_formed_sql(kind: IdentifierKind, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether an identifier looks usable, decided by the database so that no value leaves it."""
    trimmed = sa.func.trim(column)
    if kind is IdentifierKind.EMAIL:
        return sa.and_(trimmed.like("%_@_%._%"), ~column.like("%@%@%"), ~trimmed.like("% %"))
    if kind is IdentifierKind.PHONE:
        return _digits(column).between(8, 15)
    return sa.and_(trimmed != "", _digits(column) >= 1)


def source_flags(
    engine: sa.Engine, table_name: str, entry: TableEntry, filled: Iterable[str], *, chunk_rows: int = FLAG_CHUNK_ROWS
) -> pd.DataFrame | None:
    """Per row: the key, whether each timestamp column is filled, and whether each identifier is well-formed.

    Only keys and 1/0/NULL leave the database. None when there is nothing to ask.
    """
    filled = list(filled)
    identifiers = dict(entry.subject.identifiers)
    if not filled and not identifiers:
        return None
    names = [*entry.primary_key, *filled, *identifiers.values()]
    table = sa.table(table_name, *(sa.column(n) for n in dict.fromkeys(names)))
    key = RowKey.of(table, entry.primary_key)
    selected: list[sa.ColumnElement[Any]] = [*key.selected(table)]
    selected += [sa.case((table.c[c].is_(None), 0), else_=1).label(f"filled:{c}") for c in filled]
    selected += [
        sa.case((table.c[col].is_(None), None), (well_formed_sql(kind, table.c[col]), 1), else_=0).label(
            f"well_formed:{kind.value}"
        )
        for kind, col in identifiers.items()
    ]
    columns = [c.name for c in selected]
    parts: list[pd.DataFrame] = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(sa.select(*selected))
        for rows in result.partitions(chunk_rows):
            parts.append(rows_frame(rows, columns))
    return key.joined(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns))

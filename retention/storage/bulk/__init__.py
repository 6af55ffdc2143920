"""Set-based writes and reads by key, at the driver level where volumes are large, with one strategy per dialect.

COPY on PostgreSQL; multi-row VALUES for inserts and the driver's executemany for updates on SQLite; multi-row
statements on MariaDB. The functions here are the API callers use: each hands its work to the strategy of the
connection's dialect (`strategy_for`), so a database without a strategy fails with a clear message instead of
being sent another database's SQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from retention.storage.bulk.base import (
    MAX_PARAMS,
    BulkStrategy,
    Pk,
    UnsupportedDialect,
    bind_processors,
    chunks,
    marks,
)
from retention.storage.bulk.mariadb import MariadbBulk
from retention.storage.bulk.postgresql import PostgresqlBulk
from retention.storage.bulk.sqlite import SqliteBulk

__all__ = [
    "MAX_PARAMS",
    "BulkStrategy",
    "Pk",
    "UnsupportedDialect",
    "bind_processors",
    "chunks",
    "delete_keys",
    "fetch_raw",
    "fetch_typed",
    "in_keys",
    "insert_columns",
    "key_match",
    "marks",
    "set_constants",
    "strategy_for",
    "update_many",
]

_STRATEGIES: dict[str, BulkStrategy] = {
    name: strategy for strategy in (SqliteBulk(), PostgresqlBulk(), MariadbBulk()) for name in strategy.dialects
}


def strategy_for(dialect: sa.Dialect | str) -> BulkStrategy:
    """The bulk SQL for a dialect (or its name, as in `conn.dialect.name`)."""
    name = dialect if isinstance(dialect, str) else dialect.name
    try:
        return _STRATEGIES[name]
    except KeyError:
        supported = ", ".join(sorted(_STRATEGIES))
        raise UnsupportedDialect(
            f"no bulk SQL for the {name!r} database dialect; supported dialects: {supported}. Use one of these "
            f"databases, or add a BulkStrategy subclass for {name!r} to retention.storage.bulk and register it there"
        ) from None


def key_match(conn: sa.Connection, column: Pk, keys: list) -> tuple[str, tuple]:
    """`column IN (...)` and its parameters for a chunk of keys (`= ANY(%s)` with one array on PostgreSQL)."""
    return strategy_for(conn.dialect).key_match(conn, column, keys)


def in_keys(conn: sa.Connection, column: sa.ColumnElement, keys: list) -> sa.ColumnElement[bool]:
    """The same as `key_match` for SQLAlchemy statements."""
    return strategy_for(conn.dialect).in_keys(conn, column, keys)


def delete_keys(conn: sa.Connection, table: sa.Table, pk: Pk, keys: list[object]) -> None:
    """DELETE ... WHERE pk IN (...), in chunks the driver accepts."""
    strategy_for(conn.dialect).delete_keys(conn, table, pk, keys)


def set_constants(conn: sa.Connection, table: sa.Table, pk: Pk, values: dict[str, object], keys: list) -> None:
    """UPDATE ... SET column = constant WHERE pk IN (...), in chunks."""
    strategy_for(conn.dialect).set_constants(conn, table, pk, values, keys)


def fetch_raw(conn: sa.Connection, table: sa.Table, columns: list[str], pk: Pk, keys: list) -> Iterator[tuple]:
    """Rows of the given columns by key, as the driver returns them (no type processing: for digests)."""
    return strategy_for(conn.dialect).fetch_raw(conn, table, columns, pk, keys)


def fetch_typed(
    conn: sa.Connection, table: sa.Table, columns: list[str], pk: Pk, keys: list, *, lock: bool = False
) -> dict[str, list]:
    """Column -> values of the rows with the given keys, converted by SQLAlchemy's own result processors (so
    typed as a SQLAlchemy select would give them), but column by column instead of through a Row per row.
    With `lock`, the rows are locked for the transaction (FOR UPDATE; SQLite locks the whole database)."""
    return strategy_for(conn.dialect).fetch_typed(conn, table, columns, pk, keys, lock=lock)


def insert_columns(conn: sa.Connection, table: sa.Table, columns: dict[str, list]) -> None:
    """Many driver-ready rows, given column by column, past SQLAlchemy's per-row bind processing, which
    dominates at apply's volumes: COPY on PostgreSQL, multi-row VALUES on SQLite, the driver's executemany on
    MariaDB (PyMySQL folds the rows into multi-row VALUES itself)."""
    names, values = list(columns), list(columns.values())
    if not values or not values[0]:
        return
    strategy_for(conn.dialect).insert_columns(conn, table, names, values)


def update_many(conn: sa.Connection, table: sa.Table, fields: list[str], pk: Pk, rows: list[tuple]) -> None:
    """SET fields WHERE pk = key for many rows (values first, key last): on PostgreSQL a temporary table
    filled by COPY and joined in one UPDATE; on MariaDB one joined UPDATE per chunk; on SQLite the driver's
    executemany, whose loop runs in C."""
    if not rows:
        return
    strategy_for(conn.dialect).update_many(conn, table, fields, pk, rows)

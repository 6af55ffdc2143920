"""Set-based writes and reads by key, at the driver level where volumes are large.

At a million rows SQLAlchemy's per-row processing costs more than the database's own work, so these go to the
driver directly: COPY on PostgreSQL; multi-row VALUES for inserts and the driver's executemany for updates on
SQLite; multi-row statements on MariaDB. Values still pass through SQLAlchemy's own bind and result
processors, so what is stored and read is exactly what SQLAlchemy would store and read.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

MAX_PARAMS = 30_000  # below every driver's and server's limit on bound parameters in one statement


SQLITE_ROWS = 500  # rows per multi-row INSERT on SQLite, within its limit on bound parameters


def marks(conn: sa.Connection, count: int) -> list[str]:
    style = conn.dialect.paramstyle
    return ["?"] * count if style == "qmark" else ["%s"] * count


def chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def bind_processors(conn: sa.Connection, columns: list[sa.Column]) -> list[Callable[[object], object] | None]:
    """SQLAlchemy's own conversions to what the driver takes, so bulk writes store exactly what it would."""
    dialect = conn.dialect
    return [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def key_match(conn: sa.Connection, column: str, keys: list) -> tuple[str, tuple]:
    """`column IN (...)` and its parameters for a chunk of keys; on PostgreSQL `= ANY(%s)` with one array,
    because psycopg parses a statement's placeholders in Python, which at thousands of keys costs more than
    the statement."""
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        return f"{quote(column)} = ANY(%s)", (list(keys),)
    return f"{quote(column)} IN ({', '.join(marks(conn, len(keys)))})", tuple(keys)


def in_keys(conn: sa.Connection, column: sa.ColumnElement, keys: list) -> sa.ColumnElement[bool]:
    """The same as `key_match` for SQLAlchemy statements."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(keys), type_=postgresql.ARRAY(column.type)))
    return column.in_(keys)


def delete_keys(conn: sa.Connection, table: sa.Table, pk: str, keys: list[object]) -> None:
    """DELETE ... WHERE pk IN (...), in chunks the driver accepts."""
    quote = conn.dialect.identifier_preparer.quote
    for chunk in chunks(keys, MAX_PARAMS):
        match, params = key_match(conn, pk, chunk)
        conn.exec_driver_sql(f"DELETE FROM {quote(table.name)} WHERE {match}", params)


def set_constants(conn: sa.Connection, table: sa.Table, pk: str, values: dict[str, object], keys: list) -> None:
    """UPDATE ... SET column = constant WHERE pk IN (...), in chunks."""
    quote = conn.dialect.identifier_preparer.quote
    names = list(values)
    processors = bind_processors(conn, [table.c[n] for n in names])
    constants = tuple(p(values[n]) if p else values[n] for n, p in zip(names, processors, strict=True))
    sets = ", ".join(f"{quote(n)} = {m}" for n, m in zip(names, marks(conn, len(names)), strict=True))
    for chunk in chunks(keys, MAX_PARAMS):
        match, params = key_match(conn, pk, chunk)
        conn.exec_driver_sql(f"UPDATE {quote(table.name)} SET {sets} WHERE {match}", constants + params)


def fetch_raw(conn: sa.Connection, table: sa.Table, columns: list[str], pk: str, keys: list) -> Iterator[tuple]:
    """Rows of the given columns by key, as the driver returns them (no type processing: for digests)."""
    quote = conn.dialect.identifier_preparer.quote
    listed = ", ".join(quote(c) for c in columns)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for chunk in chunks(keys, MAX_PARAMS):
            match, params = key_match(conn, pk, chunk)
            cursor.execute(f"SELECT {listed} FROM {quote(table.name)} WHERE {match}", params)
            yield from cursor.fetchall()
    finally:
        cursor.close()


def fetch_typed(
    conn: sa.Connection, table: sa.Table, columns: list[str], pk: str, keys: list, *, lock: bool = False
) -> dict[str, list]:
    """Column -> values of the rows with the given keys, converted by SQLAlchemy's own result processors (so
    typed as a SQLAlchemy select would give them), but column by column instead of through a Row per row.
    With `lock`, the rows are locked for the transaction (FOR UPDATE; SQLite locks the whole database)."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    listed = ", ".join(quote(c) for c in columns)
    locking = " FOR UPDATE" if lock and dialect.name != "sqlite" else ""
    found: dict[str, list] = {c: [] for c in columns}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for chunk in chunks(keys, MAX_PARAMS):
            match, params = key_match(conn, pk, chunk)
            cursor.execute(f"SELECT {listed} FROM {quote(table.name)} WHERE {match}{locking}", params)
            rows = cursor.fetchall()
            if not rows:
                continue
            for name, described, values in zip(columns, cursor.description, zip(*rows, strict=True), strict=True):
                process = table.c[name].type.dialect_impl(dialect).result_processor(dialect, described[1])
                found[name].extend(map(process, values) if process else values)
    finally:
        cursor.close()
    return found


def _copy_rows(conn: sa.Connection, table_sql: str, names: list[str], rows: Iterable[tuple]) -> None:
    """PostgreSQL's COPY through psycopg: the fastest way to hand the server many rows."""
    quote = conn.dialect.identifier_preparer.quote
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table_sql} ({', '.join(quote(n) for n in names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _executemany(conn: sa.Connection, sql: str, rows: list[tuple]) -> None:
    """The driver's executemany on the transaction's own connection: SQLAlchemy's wrapper inspects every row,
    which costs more than SQLite's insert itself."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def insert_columns(conn: sa.Connection, table: sa.Table, columns: dict[str, list]) -> None:
    """Many driver-ready rows, given column by column, past SQLAlchemy's per-row bind processing, which
    dominates at apply's volumes: COPY on PostgreSQL, multi-row VALUES on SQLite, the driver's executemany on
    MariaDB (PyMySQL folds the rows into multi-row VALUES itself)."""
    names, values = list(columns), list(columns.values())
    if not values or not values[0]:
        return
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, quote(table.name), names, zip(*values, strict=True))
        return
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
    row = f"({', '.join(marks(conn, len(names)))})"
    if conn.dialect.name != "sqlite":
        _executemany(conn, head + row, list(zip(*values, strict=True)))
        return
    # sqlite3 runs a statement per row in executemany; many rows per statement cost a third less
    dbapi = conn.connection.dbapi_connection
    per = max(1, min(SQLITE_ROWS, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(names)))  # type: ignore[union-attr]
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(values[0]), per):
            chunk = [column[start : start + per] for column in values]
            flat = list(itertools.chain.from_iterable(zip(*chunk, strict=True)))
            cursor.execute(head + ", ".join([row] * len(chunk[0])), flat)
    finally:
        cursor.close()


_temp_counter = itertools.count()


def update_many(conn: sa.Connection, table: sa.Table, fields: list[str], pk: str, rows: list[tuple]) -> None:
    """SET fields WHERE pk = key for many rows (values first, key last): on PostgreSQL a temporary table
    filled by COPY and joined in one UPDATE; on MariaDB one joined UPDATE per chunk; on SQLite the driver's
    executemany, whose loop runs in C."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    dialect = conn.dialect.name
    name = quote(table.name)
    columns = [*fields, pk]
    values = rows
    processors = bind_processors(conn, [table.c[c] for c in columns])
    if dialect != "postgresql" and any(processors):
        by_column = [
            [p(v) if v is not None else None for v in column] if p is not None else column
            for p, column in zip(processors, zip(*rows, strict=True), strict=True)
        ]
        values = list(zip(*by_column, strict=True))
    if dialect == "sqlite":
        sets = ", ".join(f"{quote(f)} = ?" for f in fields)
        _executemany(conn, f"UPDATE {name} SET {sets} WHERE {quote(pk)} = ?", values)
    elif dialect == "postgresql":
        temp = quote(f"retention_update_{next(_temp_counter)}")
        listed = ", ".join(quote(c) for c in columns)
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {listed} FROM {name} WITH NO DATA"
        )
        _copy_rows(conn, temp, columns, values)
        sets = ", ".join(f"{quote(f)} = v.{quote(f)}" for f in fields)
        conn.exec_driver_sql(f"UPDATE {name} SET {sets} FROM {temp} AS v WHERE {name}.{quote(pk)} = v.{quote(pk)}")
    else:
        per = max(1, MAX_PARAMS // len(columns))
        first = "SELECT " + ", ".join(f"%s AS {quote('v_' + c)}" for c in columns)
        rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(columns))
        sets = ", ".join(f"t.{quote(f)} = v.{quote('v_' + f)}" for f in fields)
        for start in range(0, len(values), per):
            chunk = values[start : start + per]
            sql = (
                f"UPDATE {name} AS t JOIN ({first}{rest * (len(chunk) - 1)}) AS v "
                f"ON t.{quote(pk)} = v.{quote('v_' + pk)} SET {sets}"
            )
            conn.exec_driver_sql(sql, tuple(v for row in chunk for v in row))

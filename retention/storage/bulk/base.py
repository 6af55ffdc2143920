"""What every dialect's bulk SQL shares, and the steps a dialect must supply itself.

At a million rows SQLAlchemy's per-row processing costs more than the database's own work, so these go to the
driver directly. Values still pass through SQLAlchemy's own bind and result processors, so what is stored and
read is exactly what SQLAlchemy would store and read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa

MAX_PARAMS = 30_000  # below every driver's and server's limit on bound parameters in one statement

Pk = str | Sequence[str]
"""A key column, or the columns of a composite key (whose keys are then tuples of the parts)."""


def key_columns(pk: Pk) -> list[str]:
    return [pk] if isinstance(pk, str) else list(pk)


def flat(rows: Sequence[tuple]) -> list:
    return [v for row in rows for v in row]


class UnsupportedDialect(Exception):
    """The bulk layer has no SQL for a database; the message names it, the supported ones and what to do."""


def chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(conn: sa.Connection, count: int) -> list[str]:
    """Placeholders in the driver's own style, for SQL passed to it directly."""
    style = conn.dialect.paramstyle
    return ["?"] * count if style == "qmark" else ["%s"] * count


def bind_processors(conn: sa.Connection, columns: list[sa.Column]) -> list[Callable[[object], object] | None]:
    """SQLAlchemy's own conversions to what the driver takes, so bulk writes store exactly what it would."""
    dialect = conn.dialect
    return [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def processed_rows(conn: sa.Connection, table: sa.Table, columns: list[str], rows: list[tuple]) -> list[tuple]:
    """Rows converted column by column by the bind processors (unchanged when no column has one)."""
    processors = bind_processors(conn, [table.c[c] for c in columns])
    if not any(processors):
        return rows
    by_column = [
        [p(v) if v is not None else None for v in column] if p is not None else column
        for p, column in zip(processors, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*by_column, strict=True))


def executemany(conn: sa.Connection, sql: str, rows: list[tuple]) -> None:
    """The driver's executemany on the transaction's own connection: SQLAlchemy's wrapper inspects every row,
    which costs more than the database's own work."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


class BulkStrategy(ABC):
    """Set-based reads and writes by key for one dialect. The reads and the deletes and constant updates are
    plain SQL every dialect runs; many-row inserts and per-row updates differ, so each dialect supplies them."""

    dialects: tuple[str, ...] = ()
    """SQLAlchemy dialect names (`conn.dialect.name`) this strategy serves."""

    lock_suffix = " FOR UPDATE"
    """Appended to a locking SELECT."""

    def key_match(self, conn: sa.Connection, column: Pk, keys: list) -> tuple[str, tuple]:
        """`column IN (...)` and its parameters for a chunk of keys; `(a, b) IN ((?, ?), ...)` for a composite
        key, a row value every supported database matches by its index."""
        quote = conn.dialect.identifier_preparer.quote
        names = key_columns(column)
        if len(names) == 1:
            return f"{quote(names[0])} IN ({', '.join(marks(conn, len(keys)))})", tuple(keys)
        row = f"({', '.join(marks(conn, len(names)))})"
        listed = ", ".join(quote(n) for n in names)
        return f"({listed}) IN ({', '.join([row] * len(keys))})", tuple(flat(keys))

    def in_keys(self, conn: sa.Connection, column: sa.ColumnElement, keys: list) -> sa.ColumnElement[bool]:
        """The same as `key_match` for SQLAlchemy statements."""
        return column.in_(keys)

    @staticmethod
    def per_chunk(pk: Pk) -> int:
        return MAX_PARAMS // len(key_columns(pk))

    def delete_keys(self, conn: sa.Connection, table: sa.Table, pk: Pk, keys: list[object]) -> None:
        quote = conn.dialect.identifier_preparer.quote
        for chunk in chunks(keys, self.per_chunk(pk)):
            match, params = self.key_match(conn, pk, chunk)
            conn.exec_driver_sql(f"DELETE FROM {quote(table.name)} WHERE {match}", params)

    def set_constants(
        self, conn: sa.Connection, table: sa.Table, pk: Pk, values: dict[str, object], keys: list
    ) -> None:
        quote = conn.dialect.identifier_preparer.quote
        names = list(values)
        processors = bind_processors(conn, [table.c[n] for n in names])
        constants = tuple(p(values[n]) if p else values[n] for n, p in zip(names, processors, strict=True))
        sets = ", ".join(f"{quote(n)} = {m}" for n, m in zip(names, marks(conn, len(names)), strict=True))
        for chunk in chunks(keys, self.per_chunk(pk)):
            match, params = self.key_match(conn, pk, chunk)
            conn.exec_driver_sql(f"UPDATE {quote(table.name)} SET {sets} WHERE {match}", constants + params)

    def fetch_raw(
        self, conn: sa.Connection, table: sa.Table, columns: list[str], pk: Pk, keys: list
    ) -> Iterator[tuple]:
        quote = conn.dialect.identifier_preparer.quote
        listed = ", ".join(quote(c) for c in columns)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for chunk in chunks(keys, self.per_chunk(pk)):
                match, params = self.key_match(conn, pk, chunk)
                cursor.execute(f"SELECT {listed} FROM {quote(table.name)} WHERE {match}", params)
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def fetch_typed(
        self, conn: sa.Connection, table: sa.Table, columns: list[str], pk: Pk, keys: list, *, lock: bool = False
    ) -> dict[str, list]:
        dialect = conn.dialect
        quote = dialect.identifier_preparer.quote
        listed = ", ".join(quote(c) for c in columns)
        locking = self.lock_suffix if lock else ""
        found: dict[str, list] = {c: [] for c in columns}
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for chunk in chunks(keys, self.per_chunk(pk)):
                match, params = self.key_match(conn, pk, chunk)
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

    def insert_head(self, conn: sa.Connection, table: sa.Table, names: list[str]) -> tuple[str, str]:
        """`INSERT INTO t (a, b) VALUES ` and one row's `(?, ?)`."""
        quote = conn.dialect.identifier_preparer.quote
        head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
        return head, f"({', '.join(marks(conn, len(names)))})"

    @abstractmethod
    def insert_columns(self, conn: sa.Connection, table: sa.Table, names: list[str], values: list[list]) -> None:
        """Insert driver-ready rows given column by column (at least one row)."""

    @abstractmethod
    def update_many(self, conn: sa.Connection, table: sa.Table, fields: list[str], pk: Pk, rows: list[tuple]) -> None:
        """SET fields WHERE pk = key for many rows, values first and the key's parts last (at least one row)."""

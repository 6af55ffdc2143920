"""PostgreSQL through psycopg: COPY for many rows, arrays for many keys."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from retention.storage.bulk.base import BulkStrategy, Pk, key_columns

_temp_counter = itertools.count()


def copy_rows(conn: sa.Connection, table_sql: str, names: list[str], rows: Iterable[tuple]) -> None:
    """COPY through psycopg: the fastest way to hand the server many rows. psycopg adapts the values itself,
    so they need no bind processing."""
    quote = conn.dialect.identifier_preparer.quote
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table_sql} ({', '.join(quote(n) for n in names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


class PostgresqlBulk(BulkStrategy):
    """Keys go as one array (`= ANY(%s)`): psycopg parses a statement's placeholders in Python, which at
    thousands of keys costs more than the statement."""

    dialects = ("postgresql",)

    def key_match(self, conn: sa.Connection, column: Pk, keys: list) -> tuple[str, tuple]:
        if not isinstance(column, str):
            return super().key_match(conn, column, keys)
        return f"{conn.dialect.identifier_preparer.quote(column)} = ANY(%s)", (list(keys),)

    def in_keys(self, conn: sa.Connection, column: sa.ColumnElement, keys: list) -> sa.ColumnElement[bool]:
        if isinstance(column, sa.Tuple):
            return super().in_keys(conn, column, keys)
        return column == sa.any_(sa.bindparam(None, list(keys), type_=postgresql.ARRAY(column.type)))

    def insert_columns(self, conn: sa.Connection, table: sa.Table, names: list[str], values: list[list]) -> None:
        copy_rows(conn, conn.dialect.identifier_preparer.quote(table.name), names, zip(*values, strict=True))

    def update_many(self, conn: sa.Connection, table: sa.Table, fields: list[str], pk: Pk, rows: list[tuple]) -> None:
        """A temporary table filled by COPY and joined in one UPDATE."""
        quote = conn.dialect.identifier_preparer.quote
        name = quote(table.name)
        keys = key_columns(pk)
        columns = [*fields, *keys]
        temp = quote(f"retention_update_{next(_temp_counter)}")
        listed = ", ".join(quote(c) for c in columns)
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {listed} FROM {name} WITH NO DATA"
        )
        copy_rows(conn, temp, columns, rows)
        sets = ", ".join(f"{quote(f)} = v.{quote(f)}" for f in fields)
        joined = " AND ".join(f"{name}.{quote(k)} = v.{quote(k)}" for k in keys)
        conn.exec_driver_sql(f"UPDATE {name} SET {sets} FROM {temp} AS v WHERE {joined}")

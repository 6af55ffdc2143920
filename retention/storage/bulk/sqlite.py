"""SQLite: multi-row VALUES for inserts, the driver's executemany for updates."""

from __future__ import annotations

import itertools
import sqlite3

import sqlalchemy as sa

from retention.storage.bulk.base import BulkStrategy, Pk, executemany, key_columns, processed_rows

SQLITE_ROWS = 500  # rows per multi-row INSERT, within SQLite's limit on bound parameters


class SqliteBulk(BulkStrategy):
    """SQLite locks the whole database for a write transaction, so a locking SELECT needs no FOR UPDATE (which
    it does not understand)."""

    dialects = ("sqlite",)
    lock_suffix = ""

    def insert_columns(self, conn: sa.Connection, table: sa.Table, names: list[str], values: list[list]) -> None:
        """sqlite3 runs a statement per row in executemany; many rows per statement cost a third less."""
        head, row = self.insert_head(conn, table, names)
        dbapi = conn.connection.dbapi_connection
        limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
        per = max(1, min(SQLITE_ROWS, limit // len(names)))
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        try:
            for start in range(0, len(values[0]), per):
                chunk = [column[start : start + per] for column in values]
                flat = list(itertools.chain.from_iterable(zip(*chunk, strict=True)))
                cursor.execute(head + ", ".join([row] * len(chunk[0])), flat)
        finally:
            cursor.close()

    def update_many(self, conn: sa.Connection, table: sa.Table, fields: list[str], pk: Pk, rows: list[tuple]) -> None:
        """The driver's executemany, whose loop runs in C."""
        quote = conn.dialect.identifier_preparer.quote
        keys = key_columns(pk)
        values = processed_rows(conn, table, [*fields, *keys], rows)
        sets = ", ".join(f"{quote(f)} = ?" for f in fields)
        where = " AND ".join(f"{quote(k)} = ?" for k in keys)
        executemany(conn, f"UPDATE {quote(table.name)} SET {sets} WHERE {where}", values)

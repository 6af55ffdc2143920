"""MariaDB through PyMySQL: multi-row statements."""

from __future__ import annotations

import sqlalchemy as sa

from retention.storage.bulk.base import MAX_PARAMS, BulkStrategy, Pk, executemany, key_columns, processed_rows


class MariadbBulk(BulkStrategy):
    """SQLAlchemy names the dialect "mysql" for the mysql:// URLs and "mariadb" for mariadb:// ones."""

    dialects = ("mysql", "mariadb")

    def insert_columns(self, conn: sa.Connection, table: sa.Table, names: list[str], values: list[list]) -> None:
        """The driver's executemany: PyMySQL folds the rows into multi-row VALUES itself."""
        head, row = self.insert_head(conn, table, names)
        executemany(conn, head + row, list(zip(*values, strict=True)))

    def update_many(self, conn: sa.Connection, table: sa.Table, fields: list[str], pk: Pk, rows: list[tuple]) -> None:
        """One UPDATE per chunk, joined to the chunk's rows given as a UNION ALL of SELECTs."""
        quote = conn.dialect.identifier_preparer.quote
        name = quote(table.name)
        keys = key_columns(pk)
        columns = [*fields, *keys]
        values = processed_rows(conn, table, columns, rows)
        per = max(1, MAX_PARAMS // len(columns))
        first = "SELECT " + ", ".join(f"%s AS {quote('v_' + c)}" for c in columns)
        rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(columns))
        sets = ", ".join(f"t.{quote(f)} = v.{quote('v_' + f)}" for f in fields)
        joined = " AND ".join(f"t.{quote(k)} = v.{quote('v_' + k)}" for k in keys)
        for start in range(0, len(values), per):
            chunk = values[start : start + per]
            sql = f"UPDATE {name} AS t JOIN ({first}{rest * (len(chunk) - 1)}) AS v ON {joined} SET {sets}"
            conn.exec_driver_sql(sql, tuple(v for row in chunk for v in row))

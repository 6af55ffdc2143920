"""The bulk layer picks one strategy per dialect, refuses a dialect it has none for instead of sending it another
database's SQL, and each strategy stores and reads exactly what SQLAlchemy would."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, oracle, postgresql, sqlite

from retention.storage import bulk
from retention.storage.bulk import UnsupportedDialect, strategy_for
from retention.storage.bulk.mariadb import MariadbBulk
from retention.storage.bulk.postgresql import PostgresqlBulk
from retention.storage.bulk.sqlite import SqliteBulk
from tests.databases import ServerDatabases


def test_each_supported_dialect_has_its_own_strategy() -> None:
    assert isinstance(strategy_for(sqlite.dialect()), SqliteBulk)
    assert isinstance(strategy_for(postgresql.dialect()), PostgresqlBulk)
    assert isinstance(strategy_for(mysql.dialect()), MariadbBulk)
    assert isinstance(strategy_for("mariadb"), MariadbBulk)


def test_an_unknown_dialect_is_refused_with_what_to_do() -> None:
    with pytest.raises(UnsupportedDialect) as refused:
        strategy_for(oracle.dialect())
    message = str(refused.value)
    assert "'oracle'" in message
    for supported in ("mariadb", "mysql", "postgresql", "sqlite"):
        assert supported in message
    assert "BulkStrategy" in message


def test_the_module_functions_refuse_before_sending_any_sql() -> None:
    """No dialect falls through to another's SQL: the connection is never used."""
    conn = SimpleNamespace(dialect=mssql.dialect())
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    with pytest.raises(UnsupportedDialect, match="'mssql'"):
        bulk.delete_keys(conn, table, "id", [1])  # type: ignore[arg-type]
    with pytest.raises(UnsupportedDialect, match="'mssql'"):
        bulk.update_many(conn, table, ["id"], "id", [(1, 1)])  # type: ignore[arg-type]


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite and MariaDB give back the stored wall-clock time without a zone, PostgreSQL an aware one."""
    if value is None or value.tzinfo is not None:
        return value if value is None else value.astimezone(dt.UTC)
    return value.replace(tzinfo=dt.UTC)


@pytest.mark.servers
def test_bulk_writes_and_reads_store_what_sqlalchemy_would(databases: ServerDatabases) -> None:
    engine = sa.create_engine(databases.new_url("bulk"))
    table = sa.Table(
        "people",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(40)),
        sa.Column("seen", sa.DateTime(timezone=True)),
        sa.Column("born", sa.Date),
    )
    table.create(engine)
    when = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    count = 1_200  # more than one multi-row INSERT on SQLite
    try:
        with engine.begin() as conn:
            ids = list(range(count))
            bulk.insert_columns(conn, table, {"id": ids, "name": [f"n{i}" for i in ids], "born": [None] * count})
            bulk.update_many(conn, table, ["name", "born"], "id", [("x", dt.date(1990, 5, 17), i) for i in (3, 5)])
            bulk.set_constants(conn, table, "id", {"seen": when}, [5, 7])
            bulk.delete_keys(conn, table, "id", [0, 1, 2])
        with engine.connect() as conn:
            rows = {r.id: (r.name, r.born) for r in conn.execute(sa.select(table))}
            assert len(rows) == count - 3 and 0 not in rows and rows[4] == ("n4", None)
            assert rows[3] == rows[5] == ("x", dt.date(1990, 5, 17))
            typed = bulk.fetch_typed(conn, table, ["id", "seen", "born"], "id", [5, 7, 8])
            by_id = dict(zip(typed["id"], zip(typed["seen"], typed["born"], strict=True), strict=True))
            assert {k: (utc(s), b) for k, (s, b) in by_id.items()} == {
                5: (when, dt.date(1990, 5, 17)),
                7: (when, None),
                8: (None, None),
            }
            assert sorted(r[0] for r in bulk.fetch_raw(conn, table, ["id"], "id", [1, 3, 4, 5_000])) == [3, 4]
            matching = conn.execute(sa.select(sa.func.count()).where(bulk.in_keys(conn, table.c.id, [3, 4, 5_000])))
            assert matching.scalar_one() == 2
    finally:
        engine.dispose()

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


@pytest.mark.servers
def test_bulk_writes_and_reads_by_a_composite_key(databases: ServerDatabases) -> None:
    """An order line's key is (order, line): every bulk function matches both parts, never one alone."""
    engine = sa.create_engine(databases.new_url("bulkpair"))
    table = sa.Table(
        "lines",
        sa.MetaData(),
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("line_no", sa.String(4), primary_key=True),
        sa.Column("note", sa.String(40)),
    )
    table.create(engine)
    pk = ("order_id", "line_no")
    pairs = [(order, str(line)) for order in range(300) for line in range(1, 5)]
    try:
        with engine.begin() as conn:
            bulk.insert_columns(
                conn,
                table,
                {"order_id": [o for o, _ in pairs], "line_no": [n for _, n in pairs], "note": ["n"] * len(pairs)},
            )
            bulk.update_many(conn, table, ["note"], pk, [("x", 3, "2"), ("y", 4, "1")])
            bulk.set_constants(conn, table, pk, {"note": None}, [(5, "1"), (5, "3")])
            bulk.delete_keys(conn, table, pk, [(0, "1"), (1, "4")])
        with engine.connect() as conn:
            rows = {(r.order_id, r.line_no): r.note for r in conn.execute(sa.select(table))}
            assert len(rows) == len(pairs) - 2 and (0, "1") not in rows and (0, "2") in rows and (1, "4") not in rows
            assert rows[(3, "2")] == "x" and rows[(3, "1")] == "n" and rows[(4, "1")] == "y" and rows[(2, "2")] == "n"
            assert rows[(5, "1")] is None and rows[(5, "2")] == "n" and rows[(5, "3")] is None
            typed = bulk.fetch_typed(conn, table, ["order_id", "line_no", "note"], pk, [(3, "2"), (3, "9"), (4, "1")])
            assert sorted(zip(typed["order_id"], typed["line_no"], typed["note"], strict=True)) == [
                (3, "2", "x"),
                (4, "1", "y"),
            ]
            raw = bulk.fetch_raw(conn, table, ["order_id", "line_no"], pk, [(2, "1"), (1, "2"), (2, "9")])
            assert sorted(tuple(r) for r in raw) == [(1, "2"), (2, "1")]
            both = sa.tuple_(table.c.order_id, table.c.line_no)
            matching = conn.execute(sa.select(sa.func.count()).where(bulk.in_keys(conn, both, [(3, "2"), (2, "3")])))
            assert matching.scalar_one() == 2
    finally:
        engine.dispose()

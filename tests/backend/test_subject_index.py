"""The subject index in the control database: a save writes what differs from what is stored, a request's
look-up finds a subject's rows per table, and two runs saving at the same moment both succeed, on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from retention.storage.schema import ensure_schema, subject_rows
from retention.storage.subject_index import (
    forget_source,
    indexed_rows,
    indexed_subjects,
    load_marks,
    save_subject_rows,
)
from tests.databases import ServerDatabases

pytestmark = pytest.mark.servers

PEOPLE = ("shop", "customers")
STAFF = ("hr", "employees")
MONDAY = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
TUESDAY = MONDAY + dt.timedelta(days=1)


@pytest.fixture
def control(databases: ServerDatabases) -> Iterator[sa.Engine]:
    engine = sa.create_engine(databases.new_url("control"))
    ensure_schema(engine)
    yield engine
    engine.dispose()


def stored(control: sa.Engine) -> set[tuple[str, str, str, str]]:
    with control.connect() as conn:
        return {(r.source, r.table_name, r.pk, r.subject) for r in conn.execute(sa.select(subject_rows))}


def test_a_save_keeps_what_the_index_saw_and_a_request_finds_it(control: sa.Engine) -> None:
    monday = {
        PEOPLE: pd.Series(["s1", "s1", "s2"], index=[1, 2, 3], dtype=object),
        STAFF: pd.Series(["s1", "s3"], index=['[7,"a"]', '[7,"b"]'], dtype=object),  # a composite key's text
    }
    save_subject_rows(control, monday, {PEOPLE: MONDAY, STAFF: MONDAY})
    assert load_marks(control) == {PEOPLE: MONDAY, STAFF: MONDAY}
    assert indexed_rows(control, {"s1"}, [PEOPLE, STAFF]) == {PEOPLE: ["1", "2"], STAFF: ['[7,"a"]']}
    assert indexed_subjects(control, PEOPLE, ["2", "3", "99"]) == {"s1", "s2"}

    # Tuesday: row 2 moved to s2, row 3 is gone, row 4 is new; the staff table was not indexed again
    tuesday = {PEOPLE: pd.Series(["s1", "s2", "s4"], index=[1, 2, 4], dtype=object)}
    save_subject_rows(control, tuesday, {PEOPLE: TUESDAY})
    assert stored(control) == {
        ("shop", "customers", "1", "s1"),
        ("shop", "customers", "2", "s2"),
        ("shop", "customers", "4", "s4"),
        ("hr", "employees", '[7,"a"]', "s1"),
        ("hr", "employees", '[7,"b"]', "s3"),
    }
    assert load_marks(control) == {PEOPLE: TUESDAY, STAFF: MONDAY}
    assert indexed_rows(control, {"s2", "s9"}, [PEOPLE]) == {PEOPLE: ["2"]}

    # a restored source: its marks go, so requests read its tables whole; the rows stay for the next save
    forget_source(control, "shop")
    assert load_marks(control) == {STAFF: MONDAY}


def test_two_runs_saving_at_once_both_succeed(control: sa.Engine) -> None:
    rows = {PEOPLE: pd.Series([f"s{i % 50}" for i in range(2000)], index=range(2000), dtype=object)}
    save_subject_rows(control, {PEOPLE: rows[PEOPLE].iloc[:1000]}, {PEOPLE: MONDAY})
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def save(moment: dt.datetime) -> None:
        start.wait()
        try:
            save_subject_rows(control, rows, {PEOPLE: moment})
        except BaseException as exc:  # reported below, with the thread's error
            failures.append(exc)

    threads = [threading.Thread(target=save, args=(m,)) for m in (MONDAY, TUESDAY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(stored(control)) == 2000
    assert load_marks(control)[PEOPLE] in {MONDAY, TUESDAY}

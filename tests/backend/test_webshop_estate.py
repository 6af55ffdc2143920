"""The webshop estate builds the same on every backend, with its text dates, composite keys and edge cases."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import sqlalchemy as sa

from tests.databases import ServerDatabases
from tests.webshop.data import (
    CUSTOMERS,
    EMPLOYEES,
    FORMER_EMPLOYEES,
    MAX_LINES_PER_ORDER,
    ORDERS,
    PRODUCTS,
    SLIP_MONTHS,
    WISHLIST,
    WebshopFacts,
    create_webshop,
    read_webshop,
)
from tests.webshop.schema import (
    HR_DATE_FORMAT,
    SHOP_DATE_FORMAT,
    SHOP_TIMESTAMP_FORMAT,
    TEXT_DATE_COLUMNS,
    WEBSHOP_SOURCES,
    webshop_metadata,
)

pytestmark = pytest.mark.servers

ANCHOR = datetime.date(2025, 6, 1)


def build(databases: ServerDatabases, seed: int = 11) -> tuple[dict[str, str], WebshopFacts]:
    """A fresh estate in new databases on the test's backend."""
    urls = {source: databases.new_url(f"webshop_{source}") for source in WEBSHOP_SOURCES}
    return urls, create_webshop(urls, anchor=ANCHOR, seed=seed)


def scalar(url: str, sql: str, **params: object) -> Any:
    """One value by plain SQL, so the checks do not lean on the estate's own table definitions."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


def test_the_estate_builds_with_the_documented_row_counts(databases: ServerDatabases) -> None:
    urls, facts = build(databases)
    assert facts.sources == ("shop", "hr")
    for source in WEBSHOP_SOURCES:
        for table in webshop_metadata(source).sorted_tables:
            assert scalar(urls[source], f"SELECT COUNT(*) FROM {table.name}") == facts.counts[source][table.name]
    shop, hr = facts.counts["shop"], facts.counts["hr"]
    assert (shop["customers"], shop["products"], shop["orders"], shop["wishlist"]) == (
        CUSTOMERS,
        PRODUCTS,
        ORDERS,
        WISHLIST,
    )
    assert ORDERS <= shop["order_lines"] <= ORDERS * MAX_LINES_PER_ORDER
    assert hr["employees"] == EMPLOYEES
    assert EMPLOYEES * 12 <= hr["salary_slips"] <= EMPLOYEES * SLIP_MONTHS < 1500
    assert len(facts.former_employee_ids) == FORMER_EMPLOYEES
    assert (
        scalar(urls["hr"], "SELECT COUNT(*) FROM employees WHERE employment_end IS NULL")
        == len(facts.current_employee_ids)
        == EMPLOYEES - FORMER_EMPLOYEES
    )


def test_text_dates_are_text_columns_and_composite_keys_have_two_columns(databases: ServerDatabases) -> None:
    urls, _ = build(databases)
    for source, tables in TEXT_DATE_COLUMNS.items():
        engine = sa.create_engine(urls[source])
        try:
            inspector = sa.inspect(engine)
            for table, names in tables.items():
                types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
                for name in names:
                    assert isinstance(types[name], sa.String), (source, table, name, types[name])
                    assert not isinstance(types[name], sa.Date | sa.DateTime), (source, table, name)
            if source == "shop":
                assert inspector.get_pk_constraint("order_lines")["constrained_columns"] == ["order_id", "line_no"]
                assert inspector.get_pk_constraint("wishlist")["constrained_columns"] == ["customer_id", "product_id"]
                added_at = next(c["type"] for c in inspector.get_columns("wishlist") if c["name"] == "added_at")
                assert isinstance(added_at, sa.DateTime)
        finally:
            engine.dispose()
    rows = read_webshop(urls)
    for customer in rows["shop"]["customers"]:
        datetime.datetime.strptime(customer["created_at"], SHOP_TIMESTAMP_FORMAT)
        datetime.datetime.strptime(customer["last_seen_at"], SHOP_TIMESTAMP_FORMAT)
    for order in rows["shop"]["orders"]:
        datetime.datetime.strptime(order["order_date"], SHOP_DATE_FORMAT)
    for employee in rows["hr"]["employees"]:
        datetime.datetime.strptime(employee["hired_on"], HR_DATE_FORMAT)


def test_shared_and_unique_phones(databases: ServerDatabases) -> None:
    urls, facts = build(databases)
    first, second = facts.shared_phone_employee_ids
    same_phone = "SELECT COUNT(*) FROM employees a JOIN employees b ON a.office_phone = b.office_phone"
    assert scalar(urls["hr"], f"{same_phone} WHERE a.employee_id = :a AND b.employee_id = :b", a=first, b=second)
    emails = "SELECT COUNT(DISTINCT email) FROM employees WHERE employee_id IN (:a, :b)"
    assert scalar(urls["hr"], emails, a=first, b=second) == 2
    assert scalar(urls["hr"], f"{same_phone} WHERE a.employee_id = :a", a=first) >= 3

    unique = facts.unique_phone_customer_id
    phone = scalar(urls["shop"], "SELECT phone FROM customers WHERE customer_id = :c", c=unique)
    assert scalar(urls["shop"], "SELECT COUNT(*) FROM customers WHERE phone = :p", p=phone) == 1
    assert scalar(urls["hr"], "SELECT COUNT(*) FROM employees WHERE office_phone = :p", p=phone) == 0
    # formats differ, so compare the numbers themselves as well
    rows = read_webshop(urls)
    numbers = [phonenumbers.parse(c["phone"], "GB") for c in rows["shop"]["customers"] if c["phone"]]
    numbers += [phonenumbers.parse(e["office_phone"], "DE") for e in rows["hr"]["employees"] if e["office_phone"]]
    assert numbers.count(phonenumbers.parse(str(phone), "GB")) == 1


def test_the_edge_cases_are_where_the_facts_say(databases: ServerDatabases) -> None:
    urls, facts = build(databases)
    shop = read_webshop(urls)["shop"]
    customers = {c["customer_id"]: c for c in shop["customers"]}
    orders = {o["order_id"]: o for o in shop["orders"]}

    def seen(customer_id: int) -> datetime.datetime:
        return datetime.datetime.strptime(customers[customer_id]["last_seen_at"], SHOP_TIMESTAMP_FORMAT)

    recent, old = orders[facts.recent_order_id], orders[facts.old_order_id]
    assert recent["customer_id"] == old["customer_id"] == facts.split_orders_customer_id
    # under a 5-year hold after a 31 December year end, the recent order is held and the old one is not
    assert int(recent["order_date"][:4]) + 5 >= ANCHOR.year
    assert int(old["order_date"][:4]) + 6 < ANCHOR.year
    ordering = {o["customer_id"] for o in shop["orders"]}
    assert facts.inactive_customer_id in facts.customers_without_orders == set(customers) - ordering
    assert facts.inactive_customer_id not in {w["customer_id"] for w in shop["wishlist"]}
    assert seen(facts.inactive_customer_id) < datetime.datetime(ANCHOR.year - 3, ANCHOR.month, ANCHOR.day)
    assert datetime.datetime.combine(ANCHOR, datetime.time()) - seen(facts.active_customer_id) < datetime.timedelta(
        days=31
    )

    employees = {e["employee_id"]: e for e in read_webshop({"hr": urls["hr"]})["hr"]["employees"]}
    for employee_id in facts.long_serving_employee_ids:
        hired = datetime.datetime.strptime(employees[employee_id]["hired_on"], HR_DATE_FORMAT).date()
        assert employees[employee_id]["employment_end"] is None
        assert hired < ANCHOR.replace(year=ANCHOR.year - 10)
    assert employees[facts.left_long_ago_employee_id]["employment_end"] < ANCHOR.replace(year=ANCHOR.year - 5)
    assert employees[facts.left_recently_employee_id]["employment_end"] > ANCHOR.replace(year=ANCHOR.year - 1)
    assert {e for e, row in employees.items() if row["employment_end"] is not None} == facts.former_employee_ids


def test_the_same_seed_gives_the_same_rows_on_every_backend(databases: ServerDatabases, tmp_path: Path) -> None:
    first_urls, first = build(databases)
    second_urls, second = build(databases)
    other_urls, _ = build(databases, seed=12)
    assert first == second
    assert read_webshop(first_urls) == read_webshop(second_urls)
    assert read_webshop(other_urls) != read_webshop(first_urls)
    on_sqlite = {source: f"sqlite:///{tmp_path / f'reference_{source}.db'}" for source in WEBSHOP_SOURCES}
    assert create_webshop(on_sqlite, anchor=ANCHOR) == first
    assert read_webshop(on_sqlite) == read_webshop(first_urls)

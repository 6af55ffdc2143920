"""The daily job on the webshop estate changes its databases as the webshop's policy says, on every backend.

Three consecutive days run through the real Dagster job; afterwards every row is judged by plain SQL and the
policy's rules written out here: inactive customers carry British surrogates, orders inside their bookkeeping
period are byte-for-byte what they were and so are all their lines (the hold lists orders only), lines and
wishes past their short periods are gone, employees still employed are untouched, and former employees past
the employment period carry German surrogates. What the first day pseudonymised stays as it is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path

import phonenumbers
import pytest

from anonymizers.pools import pools
from tests.databases import ServerDatabases
from tests.webshop.estate import (
    ANCHOR,
    Rows,
    WebshopEstate,
    as_moment,
    financial_year_end,
    judged,
    plus_months,
    webshop_estate,
)
from tests.webshop.schema import HR_DATE_FORMAT, SHOP_DATE_FORMAT, SHOP_TIMESTAMP_FORMAT

pytestmark = pytest.mark.servers

DAYS = [ANCHOR, ANCHOR + dt.timedelta(days=1), ANCHOR + dt.timedelta(days=2)]
CUSTOMER_NAMES = ("first_name", "last_name", "email")


def last_interactions(shop: Rows, orders: Rows, wishlist: Rows) -> dict[int, dt.datetime]:
    """Each customer's last interaction: the account's own dates, their orders and their wishes."""
    last = {
        key[0]: max(
            as_moment(c["created_at"], SHOP_TIMESTAMP_FORMAT), as_moment(c["last_seen_at"], SHOP_TIMESTAMP_FORMAT)
        )
        for key, c in shop.items()
    }
    for order in orders.values():
        moment = as_moment(order["order_date"], SHOP_DATE_FORMAT)
        last[order["customer_id"]] = max(last[order["customer_id"]], moment)
    for wish in wishlist.values():
        last[wish["customer_id"]] = max(last[wish["customer_id"]], as_moment(wish["added_at"]))
    return last


def is_surname(value: str, pool: Iterable[str]) -> bool:
    """A surname of the pool, or two of them joined by a hyphen (a double-barrelled surrogate)."""
    names = set(pool)
    return value in names or all(part in names for part in value.split("-"))


def bookkeeping_deadline(order: dict[str, object]) -> dt.datetime:
    """Six years after the end of the financial year of the order date (end of that day)."""
    fy_end = financial_year_end(as_moment(order["order_date"], SHOP_DATE_FORMAT).date())
    return dt.datetime.combine(fy_end.replace(year=fy_end.year + 6) + dt.timedelta(days=1), dt.time())


def payroll_deadline(slip: dict[str, object]) -> dt.datetime:
    fy_end = financial_year_end(as_moment(slip["month"]).date())
    return dt.datetime.combine(fy_end.replace(year=fy_end.year + 3) + dt.timedelta(days=1), dt.time())


def check_customers(before: dict[tuple[str, str], Rows], after: dict[tuple[str, str], Rows], day: dt.date) -> int:
    """Customers past two years of inactivity carry British surrogates; the others keep their account.
    Returns how many were judged pseudonymised."""
    customers, now = before[("shop", "customers")], after[("shop", "customers")]
    last = last_interactions(customers, before[("shop", "orders")], before[("shop", "wishlist")])
    en = pools("en_GB")
    emails = {c["email"] for c in customers.values()}
    pseudonymised = 0
    for key, old in customers.items():
        new = now[key]
        account = judged(plus_months(last[key[0]], 24), day)
        marketing = judged(plus_months(last[key[0]], 12), day)
        if account:
            pseudonymised += 1
            assert new["first_name"] in set(en.first) and new["first_name"] != old["first_name"], key
            assert is_surname(new["last_name"], en.last) and new["last_name"] != old["last_name"], key
            if old["email"] is not None:
                assert new["email"] not in emails and new["email"].endswith("@anon.invalid"), key
            if old["phone"] is not None:
                number = phonenumbers.parse(new["phone"], None)
                assert new["phone"] != old["phone"] and phonenumbers.region_code_for_number(number) == "GB", key
                assert phonenumbers.is_valid_number(number), key
            match = re.fullmatch(r"\d+ (.+)", new["street"])
            assert match and match.group(1) in set(en.street), f"{key}: a British street: {new['street']!r}"
            assert new["city"] is None and new["postcode"] == old["postcode"].split()[0], key
            assert new["marketing_opt_in"] in (False, 0)
            assert (new["created_at"], new["last_seen_at"]) == (old["created_at"], old["last_seen_at"])
        elif account is False:
            keep = {c: v for c, v in old.items() if c != "marketing_opt_in"}
            assert {c: new[c] for c in keep} == keep, f"customer {key} is inside the account period"
            if marketing:
                assert new["marketing_opt_in"] in (False, 0), f"customer {key}: a stale consent is cleared"
            elif marketing is False:
                assert new["marketing_opt_in"] == old["marketing_opt_in"], key
    return pseudonymised


def check_orders(before: dict[tuple[str, str], Rows], after: dict[tuple[str, str], Rows], day: dt.date) -> None:
    """Orders inside bookkeeping and all their lines unchanged; older orders blanked, their lines gone."""
    orders, now = before[("shop", "orders")], after[("shop", "orders")]
    lines = before[("shop", "order_lines")]
    held = expired = lines_held_past_their_period = 0
    for key, old in orders.items():
        due = judged(bookkeeping_deadline(old), day)
        own_lines = {k: line for k, line in lines.items() if k[0] == key[0]}
        if due is False:
            held += 1
            assert now[key] == old, f"order {key} is inside its bookkeeping period"
            for line_key, line in own_lines.items():
                assert after[("shop", "order_lines")].get(line_key) == line, f"line {line_key} of a held order"
                past = plus_months(as_moment(old["order_date"], SHOP_DATE_FORMAT), 6) < dt.datetime.combine(
                    day, dt.time()
                )
                lines_held_past_their_period += past
        elif due:
            expired += 1
            assert now[key] == old | {"delivery_name": None, "delivery_address": None}, key
            for line_key in own_lines:
                assert line_key not in after[("shop", "order_lines")], f"line {line_key} is past its period"
    assert held and expired, "the estate has orders on both sides of the bookkeeping deadline"
    assert lines_held_past_their_period, "some held lines are older than the order-details period"


def check_wishlist(before: dict[tuple[str, str], Rows], after: dict[tuple[str, str], Rows], day: dt.date) -> None:
    wishes = before[("shop", "wishlist")]
    sides = set()
    for key, old in wishes.items():
        due = judged(plus_months(as_moment(old["added_at"]), 12), day)
        sides.add(due)
        if due:
            assert key not in after[("shop", "wishlist")], f"wish {key} is older than a year"
        elif due is False:
            assert after[("shop", "wishlist")][key] == old, key
    assert {True, False} <= sides


def check_employees(before: dict[tuple[str, str], Rows], after: dict[tuple[str, str], Rows], day: dt.date) -> int:
    """Employees still employed untouched; former ones past six years carry German surrogates."""
    employees, now = before[("hr", "employees")], after[("hr", "employees")]
    de = pools("de_DE")
    emails = {e["email"] for e in employees.values()}
    pseudonymised = 0
    for key, old in employees.items():
        new = now[key]
        if old["employment_end"] is None:
            assert new == old, f"employee {key} is still employed"
            continue
        due = judged(plus_months(as_moment(old["employment_end"]), 72), day)
        if due:
            pseudonymised += 1
            assert new["first_name"] in set(de.first) and new["first_name"] != old["first_name"], key
            assert is_surname(new["last_name"], de.last) and new["last_name"] != old["last_name"], key
            assert new["email"] not in emails and new["email"].endswith("@anon.invalid"), key
            assert new["office_phone"] is None
            match = re.fullmatch(r"(.+) \d+", new["home_address"])
            assert match and match.group(1) in set(de.street), f"{key}: a German street: {new['home_address']!r}"
            assert new["postcode"] == old["postcode"][:2] + "000", key
            assert new["birth_date"] == dt.date(old["birth_date"].year // 10 * 10, 1, 1), key
            assert (new["hired_on"], new["employment_end"]) == (old["hired_on"], old["employment_end"])
            dt.datetime.strptime(new["hired_on"], HR_DATE_FORMAT)
        elif due is False:
            assert new == old, f"employee {key} left less than six years ago"
    slips, after_slips = before[("hr", "salary_slips")], after[("hr", "salary_slips")]
    sides = set()
    for key, old in slips.items():
        due = judged(payroll_deadline(old), day)
        sides.add(due)
        if due:
            assert key not in after_slips, f"salary slip {key} is past the payroll period"
        elif due is False:
            assert after_slips[key] == old, key
    assert {True, False} <= sides
    return pseudonymised


def run(shop: WebshopEstate, day: dt.date) -> None:
    result = shop.run_day(day)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]


def test_daily_runs_on_the_webshop_enforce_its_policy(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    facts = shop.facts
    before = shop.contents()
    assert before[("shop", "products")] == shop.rows("shop", "products")

    run(shop, DAYS[0])
    first = shop.contents()
    assert check_customers(before, first, DAYS[0]) > 0
    check_orders(before, first, DAYS[0])
    check_wishlist(before, first, DAYS[0])
    assert check_employees(before, first, DAYS[0]) > 0
    # the text dates were read: an account last seen long ago is pseudonymised, a recent one is not
    customers = shop.rows("shop", "customers")
    inactive, active = (facts.inactive_customer_id,), (facts.active_customer_id,)
    assert customers[inactive]["email"] != before[("shop", "customers")][inactive]["email"]
    assert customers[active] == before[("shop", "customers")][active]
    employees = shop.rows("hr", "employees")
    for employee_id in facts.long_serving_employee_ids:
        assert employees[(employee_id,)] == before[("hr", "employees")][(employee_id,)]
    left_long_ago = (facts.left_long_ago_employee_id,)
    assert employees[left_long_ago]["first_name"] != before[("hr", "employees")][left_long_ago]["first_name"]

    for day in DAYS[1:]:
        run(shop, day)
    final = shop.contents()
    check_customers(before, final, DAYS[-1])
    check_orders(before, final, DAYS[-1])
    check_wishlist(before, final, DAYS[-1])
    check_employees(before, final, DAYS[-1])
    assert final[("shop", "products")] == before[("shop", "products")], "products hold no personal data"
    # what the first day changed the later days left as it was: one surrogate per person, no second one
    for tid, rows in first.items():
        for key, row in rows.items():
            if row != before[tid].get(key) and key in final[tid]:
                assert final[tid][key] == row, f"{tid} {key} changed again on a later day"

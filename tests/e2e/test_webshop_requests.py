"""Erasure and access requests on the webshop, on every backend, judged by the databases themselves.

A customer with one order inside its bookkeeping period and one long past it is erased: the account gets
British surrogates, the held order and all its lines stay byte-for-byte (the hold lists orders, not lines),
the old order is blanked and its lines deleted, and nobody else's row changes. Two employees who give the same
office switchboard stay two people: erasing one leaves the other alone, an access export of one holds none of
the other's data, and the switchboard number alone finds nobody, the receipt saying that it is shared.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import phonenumbers
import pytest

from anonymizers.pools import pools
from retention.requests.access import exports_dir
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.receipts import Receipt, TableReceipt, VerificationReceipt, receipt_text
from tests.databases import ServerDatabases
from tests.webshop.estate import Rows, WebshopEstate, webshop_estate

pytestmark = pytest.mark.servers

SWITCHBOARD = "+49 30 901820"
"""The Berlin office's number that employees 4 and 5 (and others) give as their phone."""


def done(outcome_receipt: Receipt | None) -> Receipt:
    assert outcome_receipt is not None
    return outcome_receipt


def by_table(receipt: Receipt) -> dict[tuple[str, str], TableReceipt]:
    return {(t.source, t.table): t for t in receipt.tables}


def unchanged_except(
    before: dict[tuple[str, str], Rows], after: dict[tuple[str, str], Rows], touched: dict[tuple[str, str], set]
) -> None:
    """Every row outside `touched` is exactly as it was, in every table of the estate."""
    assert set(after) == set(before)
    for tid, rows in before.items():
        others = set(rows) - touched.get(tid, set())
        assert {k: after[tid].get(k) for k in others} == {k: rows[k] for k in others}, f"{tid}: somebody else's row"


def test_erasure_of_a_customer_keeps_the_held_order_with_all_its_lines(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    facts = shop.facts
    before = shop.contents()
    customer = (facts.split_orders_customer_id,)
    old = before[("shop", "customers")][customer]
    recent_order, old_order = (facts.recent_order_id,), (facts.old_order_id,)
    orders = {k for k, o in before[("shop", "orders")].items() if o["customer_id"] == customer[0]}
    assert orders == {recent_order, old_order}
    lines = {k for k in before[("shop", "order_lines")] if (k[0],) in orders}
    held_lines = {k for k in lines if (k[0],) == recent_order}
    assert held_lines and lines - held_lines

    outcome = shop.request(RequestKind.ERASURE, email="  " + old["email"].upper())
    assert outcome.status is RequestStatus.DONE, outcome.summary
    receipt = done(outcome.receipt)
    assert receipt.found and len(receipt.subjects) == 1 and receipt.matched_by == ["email"]
    assert receipt.verification == VerificationReceipt(passed=True, problems=[])
    after = shop.contents()

    new = after[("shop", "customers")][customer]
    en = pools("en_GB")
    assert new["first_name"] in set(en.first) and new["first_name"] != old["first_name"]
    assert new["email"] != old["email"] and new["phone"] != old["phone"]
    assert phonenumbers.region_code_for_number(phonenumbers.parse(new["phone"], None)) == "GB"
    assert new["city"] is None and new["postcode"] == old["postcode"].split()[0]
    assert new["marketing_opt_in"] in (False, 0)
    # the order inside its bookkeeping period stays as it was, and so do all its lines
    assert after[("shop", "orders")][recent_order] == before[("shop", "orders")][recent_order]
    assert after[("shop", "orders")][old_order] == before[("shop", "orders")][old_order] | {
        "delivery_name": None,
        "delivery_address": None,
    }
    for key in held_lines:
        assert after[("shop", "order_lines")][key] == before[("shop", "order_lines")][key], key
    tables = by_table(receipt)
    assert (tables[("shop", "orders")].kept_rows, tables[("shop", "orders")].pseudonymised) == (1, 1)
    assert [k.reason for k in tables[("shop", "orders")].kept] == ["bookkeeping"]
    assert tables[("shop", "customers")].pseudonymised == 1
    for key in lines - held_lines:
        assert key not in after[("shop", "order_lines")], f"line {key} of the old order is deleted"
    assert tables[("shop", "order_lines")].kept_rows == len(held_lines)
    assert tables[("shop", "order_lines")].deleted == len(lines - held_lines)
    unchanged_except(
        before, after, {("shop", "customers"): {customer}, ("shop", "orders"): orders, ("shop", "order_lines"): lines}
    )

    # a customer with wishes, found by phone written the national way: the wishes go, nobody else changes
    wishes = before[("shop", "wishlist")]
    counts = {c: sum(1 for k in wishes if k[0] == c[0]) for c in before[("shop", "customers")]}
    second = max(
        (c for c, row in before[("shop", "customers")].items() if row["phone"] and c != customer),
        key=lambda c: (counts[c], c),
    )
    assert counts[second]
    phone = phonenumbers.parse(before[("shop", "customers")][second]["phone"], "GB")
    national = phonenumbers.format_number(phone, phonenumbers.PhoneNumberFormat.NATIONAL)
    outcome = shop.request(RequestKind.ERASURE, phone=national)
    assert outcome.status is RequestStatus.DONE, outcome.summary
    receipt = done(outcome.receipt)
    assert receipt.found and receipt.matched_by == ["phone"] and receipt.passed
    final = shop.contents()
    own_wishes = {k for k in wishes if k[0] == second[0]}
    own_orders = {k for k, o in before[("shop", "orders")].items() if o["customer_id"] == second[0]}
    own_lines = {k for k in before[("shop", "order_lines")] if (k[0],) in own_orders}
    assert not own_wishes & set(final[("shop", "wishlist")]), "the wishes of an erased customer are deleted"
    assert final[("shop", "customers")][second]["email"] != before[("shop", "customers")][second]["email"]
    unchanged_except(
        after,
        final,
        {
            ("shop", "customers"): {second},
            ("shop", "orders"): own_orders,
            ("shop", "order_lines"): own_lines,
            ("shop", "wishlist"): own_wishes,
        },
    )


def export_of(shop: WebshopEstate, receipt: Receipt) -> tuple[dict, str]:
    """The access export's document and its whole text."""
    assert receipt.export is not None
    path = exports_dir() / Path(receipt.export.file).name
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read("export.json"))
        text = b"".join(archive.read(n) for n in archive.namelist()).decode()
    return document, text


@pytest.mark.parametrize("indexed", [False, True], ids=["read whole", "through the index"])
def test_employees_sharing_an_office_phone_stay_two_people(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indexed: bool
) -> None:
    """Through the index (the HR table declares `changed_at`), the other employee's row is not even read: the
    switchboard number is known as shared from the index the daily run saved."""
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    if indexed:
        shop.view()  # the daily run's snapshot and subject index, saved
    first, second = ((e,) for e in shop.facts.shared_phone_employee_ids)
    before = shop.contents()
    employees = before[("hr", "employees")]
    assert employees[first]["office_phone"] == employees[second]["office_phone"] == SWITCHBOARD

    # access by e-mail: everything of employee 4, nothing of employee 5
    outcome = shop.request(RequestKind.ACCESS, email=employees[first]["email"])
    assert outcome.status is RequestStatus.DONE, outcome.summary
    receipt = done(outcome.receipt)
    assert receipt.found and len(receipt.subjects) == 1
    document, text = export_of(shop, receipt)
    exported = document["tables"]
    assert [r["data"]["employee_id"] for r in exported["hr.employees"]["rows"]] == [first[0]]
    slips = {k for k, s in before[("hr", "salary_slips")].items() if s["employee_id"] == first[0]}
    assert {r["data"]["slip_id"] for r in exported["hr.salary_slips"]["rows"]} == {k[0] for k in slips}
    assert set(exported) == {"hr.employees", "hr.salary_slips"}
    other = employees[second]
    for column in ("email", "home_address", "last_name"):
        if other[column] != employees[first][column]:
            assert other[column] not in text, f"employee {second}'s {column} is in employee {first}'s export"
    assert other["birth_date"].isoformat() not in json.dumps(exported["hr.employees"]), "another's birth date"

    # the switchboard number alone names nobody: it is shared, so it is not used
    for kind, written in ((RequestKind.ACCESS, SWITCHBOARD), (RequestKind.ERASURE, "030 901820")):
        outcome = shop.request(kind, phone=written)
        assert outcome.status is RequestStatus.DONE, outcome.summary
        receipt = done(outcome.receipt)
        assert (receipt.found, receipt.subjects, receipt.shared_identifiers) == (False, [], ["phone"]), kind
        assert receipt.export is None and receipt.tables == []
        assert "several people share them: phone" in receipt_text(receipt)
    assert shop.contents() == before, "a request by a shared phone alone changed something"

    # erasure of employee 4 by e-mail: employee 5, with the same phone, keeps every row
    outcome = shop.request(RequestKind.ERASURE, email=employees[first]["email"])
    assert outcome.status is RequestStatus.DONE, outcome.summary
    receipt = done(outcome.receipt)
    assert receipt.found and len(receipt.subjects) == 1 and receipt.passed
    after = shop.contents()
    new = after[("hr", "employees")][first]
    de = pools("de_DE")
    assert new["first_name"] in set(de.first) and new["email"] != employees[first]["email"]
    assert new["office_phone"] is None and new["postcode"] == employees[first]["postcode"][:2] + "000"
    assert not slips & set(after[("hr", "salary_slips")]), "payroll rows of the erased employee are deleted"
    assert after[("hr", "employees")][second] == other
    unchanged_except(before, after, {("hr", "employees"): {first}, ("hr", "salary_slips"): slips})

"""Objection to marketing and restriction on webshop customers, on every backend, with their receipts.

An objection clears the customer's marketing consent (the one column only the marketing purpose needs),
leaves the account and orders alone and puts the customer on the suppression list, which the daily run honours
when the consent comes back from a restored backup. A restriction holds an inactive customer's account through
the daily run that pseudonymises everybody else's; once lifted, the next day's run pseudonymises it too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.config.catalog import IdentifierKind
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.receipts import Receipt
from retention.requests.suppression import is_suppressed, load_suppressions
from tests.databases import ServerDatabases
from tests.webshop.estate import ANCHOR, Rows, WebshopEstate, webshop_estate

pytestmark = pytest.mark.servers


def others_unchanged(before: dict[tuple[str, str], Rows], after: dict[tuple[str, str], Rows], customer: int) -> None:
    for tid, rows in before.items():
        mine = {k for k in rows if tid == ("shop", "customers") and k == (customer,)}
        assert {k: after[tid].get(k) for k in set(rows) - mine} == {k: rows[k] for k in set(rows) - mine}, tid


def objecting_customer(customers: Rows) -> int:
    """The customer seen last of those who opted in: inside both the account and the marketing period."""
    customer = max(
        (k[0] for k, c in customers.items() if c["marketing_opt_in"] and c["email"]),
        key=lambda c: customers[(c,)]["last_seen_at"],  # text in '%Y-%m-%d %H:%M:%S' sorts as time does
    )
    assert customers[(customer,)]["last_seen_at"] > (ANCHOR - dt.timedelta(days=300)).isoformat()
    return customer


def object_to_marketing(shop: WebshopEstate, customer: int, email: str) -> Receipt:
    """The objection by e-mail (written in capitals); its receipt, checked."""
    outcome = shop.request(RequestKind.MARKETING_OBJECTION, email=email.upper())
    assert outcome.status is RequestStatus.DONE, outcome.summary
    receipt = outcome.receipt
    assert receipt is not None and receipt.found and receipt.passed and receipt.matched_by == ["email"]
    assert receipt.suppression is not None and receipt.suppression.entries_added >= 1
    tables = {(t.source, t.table): t for t in receipt.tables}
    assert set(tables) == {("shop", "customers")}
    assert (tables[("shop", "customers")].pseudonymised, tables[("shop", "customers")].deleted) == (1, 0)
    assert tables[("shop", "customers")].fields_changed == ["marketing_opt_in"]
    assert receipt.summary.startswith("Marketing stopped:")
    return receipt


def test_objection_clears_the_marketing_consent_and_nothing_else(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    before = shop.contents()
    customers = before[("shop", "customers")]
    customer = objecting_customer(customers)
    email = customers[(customer,)]["email"]

    receipt = object_to_marketing(shop, customer, email)
    after = shop.contents()
    row = after[("shop", "customers")][(customer,)]
    assert row == customers[(customer,)] | {"marketing_opt_in": row["marketing_opt_in"]}
    assert row["marketing_opt_in"] in (False, 0), "the consent is cleared"
    others_unchanged(before, after, customer)
    control = sa.create_engine(shop.control_url)
    try:
        assert set(receipt.subjects) <= load_suppressions(control).subjects
        assert is_suppressed(control, shop.keyring.subject, IdentifierKind.EMAIL, f" {email} ")
        assert not is_suppressed(control, shop.keyring.subject, IdentifierKind.EMAIL, "someone.else@example.co.uk")
    finally:
        control.dispose()
    # the daily run leaves the objecting customer's account alone: it is inside its period
    assert shop.run_day(ANCHOR).success
    assert shop.rows("shop", "customers")[(customer,)] == row


def test_the_daily_run_clears_a_consent_a_restored_backup_brought_back(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suppression list is honoured when the consent comes back (Art 21(3)): the daily run's
    marketing_suppression step clears it again."""
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    customers = shop.rows("shop", "customers")
    customer = objecting_customer(customers)
    object_to_marketing(shop, customer, customers[(customer,)]["email"])

    engine = sa.create_engine(shop.urls["shop"])
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE customers SET marketing_opt_in = :yes WHERE customer_id = :c"),
                {"yes": True, "c": customer},
            )
    finally:
        engine.dispose()
    result = shop.run_day(ANCHOR)
    assert result.success
    final = shop.rows("shop", "customers")[(customer,)]
    assert final["marketing_opt_in"] in (False, 0), "the suppression list keeps the consent cleared"
    assert final == customers[(customer,)] | {"marketing_opt_in": final["marketing_opt_in"]}


def test_restriction_holds_an_inactive_customer_until_it_is_lifted(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    customer = (shop.facts.inactive_customer_id,)
    before = shop.contents()
    email = before[("shop", "customers")][customer]["email"]

    outcome = shop.request(RequestKind.RESTRICTION, email=email)
    assert outcome.status is RequestStatus.DONE and outcome.receipt is not None
    assert outcome.receipt.found and outcome.receipt.document()["restriction"] == {"placed": 1, "already in force": 0}
    again = shop.request(RequestKind.RESTRICTION, email=email)
    assert again.receipt is not None and again.receipt.document()["restriction"] == {"placed": 0, "already in force": 1}
    assert shop.contents() == before, "a restriction changes no data"

    result = shop.run_day(ANCHOR)
    assert result.success
    after = shop.contents()
    assert after[("shop", "customers")][customer] == before[("shop", "customers")][customer], "held: restriction"
    assert after != before, "the daily run did act on everybody else"

    lifted = shop.request(RequestKind.LIFT_RESTRICTION, email=email)
    assert lifted.status is RequestStatus.DONE and lifted.receipt is not None
    assert lifted.receipt.document()["restriction"] == {"lifted": 1}
    result = shop.run_day(ANCHOR + dt.timedelta(days=1))
    assert result.success
    resumed = shop.rows("shop", "customers")[customer]
    old = before[("shop", "customers")][customer]
    assert resumed["email"] != old["email"] and resumed["first_name"] != old["first_name"], (
        "pseudonymised after the lift"
    )
    assert resumed["city"] is None

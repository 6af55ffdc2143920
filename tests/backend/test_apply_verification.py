"""The check after apply passes on an untouched result and names each kind of damage done afterwards.

A small estate is applied for real; then, one by one, a deleted row comes back, a cleared field is filled
again, a tokenised field gets its original value back and a held voucher is edited. Each must be reported,
by table and field, without the value itself.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.apply.applier import SourceApplier
from retention.apply.verification import verify
from retention.storage.engines import Estate
from retention.storage.schema import ensure_schema, ledger, ledger_batches
from tests.databases import ServerDatabases
from tests.mini_estate import KEYRING, Shop, shop_policy, ts

pytestmark = pytest.mark.servers

DAY = dt.date(2026, 6, 1)
EMAIL = "karen.holm@example.dk"
PASSWORD = "pbkdf2$secret-hash"


def build(databases: ServerDatabases, tmp_path: Path) -> Shop:
    shop = Shop(tmp_path, databases.new_url("vcrm"), databases.new_url("vctl"), shop_policy())
    shop.insert(
        {
            "people": [
                # inactive for years, but a held invoice refers to her: pseudonymised, not deleted
                {"id": 1, "email": EMAIL, "phone": "+4520304050", "created_at": ts("2020-01-05"),
                 "last_seen": ts("2021-02-01")},
                # inactive for years, nothing refers to him: deleted
                {"id": 2, "email": "ole@example.dk", "created_at": ts("2019-03-01"), "last_seen": ts("2020-01-01")},
                # active, but not seen for over six months: the password is cleared
                {"id": 3, "email": "anna@example.dk", "password": PASSWORD, "created_at": ts("2024-01-01"),
                 "last_seen": ts("2025-09-01")},
            ],
            # held for bookkeeping, and an older one whose billing name is cleared
            "orders": [{"id": 10, "person_id": 1, "invoice_date": dt.date(2024, 3, 1), "billing_name": "Karen Holm",
                        "amount": 400},
                       {"id": 11, "person_id": 1, "invoice_date": dt.date(2019, 3, 1), "billing_name": "Karen Holm",
                        "amount": 300}],
        }
    )  # fmt: skip
    return shop


def problems_after(shop: Shop, tamper: str | None) -> list[str]:
    estate = Estate.connect(shop.config.catalog)
    try:
        assert estate.control is not None
        ensure_schema(estate.control)
        engine = estate.sources["crm"]
        plan = shop.result(DAY).plan
        # a batch a row, so that the run has several batches and held rows are checksummed on the way
        applier = SourceApplier(
            shop.config, "crm", engine, estate.control, KEYRING, run_id="t", as_of=DAY, batch_rows=1
        )
        result = applier.apply(plan)
        assert result.entries > 0
        assert {table: list(digests) for table, digests in result.verification.held.items()} == {"orders": ["10"]}
        with estate.control.connect() as conn:
            statuses = conn.execute(sa.select(ledger_batches.c.status).distinct()).scalars().all()
            assert statuses == ["done"]
            assert conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one() == result.entries
        if tamper is not None:
            with engine.begin() as conn:
                conn.execute(sa.text(tamper), {"email": EMAIL, "password": PASSWORD})
        return verify(applier, result)
    finally:
        estate.dispose()


DAMAGE = {
    "deleted row back": (
        "INSERT INTO people (id, email, created_at, last_seen) VALUES (2, 'x@example.dk', '2019-03-01', '2020-01-01')",
        ["crm.people: 1 rows planned for deletion are still there"],
    ),
    "cleared field filled": (
        "UPDATE people SET password = :password WHERE id = 3",
        ["crm.people.password: 1 rows planned to be cleared are not"],
    ),
    "original value back": (
        "UPDATE people SET email = :email WHERE id = 1",
        ["crm.people.email: 1 changed rows still hold their value"],
    ),
    "held voucher edited": (
        "UPDATE orders SET amount = 401 WHERE id = 10",
        ["crm.orders: 1 held rows changed during apply"],
    ),
}


@pytest.fixture(params=["writer process", "inline"])
def ledger_writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the ledger is written and held rows are checksummed: a writer process, or (in an interpreter
    that cannot start another) the run's own process."""
    if request.param == "inline":
        monkeypatch.setattr("sys.executable", "")
    return str(request.param)


@pytest.mark.usefixtures("ledger_writer")
def test_untouched_apply_passes(databases: ServerDatabases, tmp_path: Path) -> None:
    assert problems_after(build(databases, tmp_path), None) == []


@pytest.mark.usefixtures("ledger_writer")
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_after_apply_is_reported(damage: str, databases: ServerDatabases, tmp_path: Path) -> None:
    sql, expected = DAMAGE[damage]
    problems = problems_after(build(databases, tmp_path), sql)
    assert problems == expected
    assert not any(secret in p for p in problems for secret in (EMAIL, PASSWORD, "Karen"))


@pytest.mark.usefixtures("ledger_writer")
def test_held_rows_of_the_first_table_written_are_checksummed_too(databases: ServerDatabases, tmp_path: Path) -> None:
    """Only orders are written here, so the held voucher belongs to the run's first table, whose checksums the
    run takes itself while the writer starts."""
    shop = Shop(tmp_path, databases.new_url("vcrm"), databases.new_url("vctl"), shop_policy())
    shop.insert(
        {
            "people": [{"id": 1, "email": EMAIL, "created_at": ts("2019-01-05"), "last_seen": ts("2026-05-20")}],
            "orders": [
                {"id": 10, "person_id": 1, "invoice_date": dt.date(2024, 3, 1), "billing_name": "Karen Holm",
                 "amount": 400},
                {"id": 11, "person_id": 1, "invoice_date": dt.date(2019, 3, 1), "billing_name": "Karen Holm",
                 "amount": 300},
                {"id": 12, "person_id": 1, "invoice_date": dt.date(2019, 4, 1), "billing_name": "Karen Holm",
                 "amount": 200},
            ],
        }
    )  # fmt: skip
    assert {table for (_, table), entries in shop.result(DAY).plan.entries.items() if len(entries)} == {"orders"}
    assert problems_after(shop, DAMAGE["held voucher edited"][0]) == DAMAGE["held voucher edited"][1]

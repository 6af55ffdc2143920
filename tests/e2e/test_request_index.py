"""A request finds its person through the subject index the daily run keeps, plus the rows changed since, and
does exactly what reading the identifier tables whole does, on SQLite, PostgreSQL and MariaDB.

The same demo estate is built twice. Each gets a daily run, then the same changes an application would make
afterwards: a new customer row with the person's e-mail written differently (its `updated_at` empty), a new
e-learning account with their customer number (its `updated_at` set), and one of the person's accounts given
another e-mail. Then one estate forgets its index (as after a restore) and both carry out the same erasure
and marketing objection and one more daily run. Their databases, ledgers and receipts must be the same, the
rows added after the daily run must be erased, and the indexed estate must not have read its people tables
whole.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.service import carry_out_request
from retention.storage.schema import index_marks, ledger
from tests.databases import ServerDatabases
from tests.requests_support import ANCHOR, NOW, DemoEstate, apply_day, customer_identifiers, demo_estate, rows_of
from tests.support import table_digests

pytestmark = pytest.mark.servers

NEW_CUSTOMER, NEW_ACCOUNT = 900_001, 900_002


def _people(demo: DemoEstate) -> tuple[str, str]:
    """The most recently active person in all three databases (to erase), and the most recent other customer
    with a newsletter subscription (to object): the daily run leaves their rows as they are."""
    view = demo.view()
    subjects = view.index.subjects.sort_values(["last_interaction", "subject"], ascending=[False, True])
    person = subjects.loc[subjects["sources"] == 3, "subject"].iloc[0]
    subscribers = set(view.tagged[("newsletter", "subscribers")].frame["subject"])
    customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
    others = subjects[subjects["subject"].isin((subscribers & customers) - {person})]
    return person, others["subject"].iloc[0]


def _change_after_the_daily_run(demo: DemoEstate, subject: str, later: dt.datetime) -> dict[str, str]:
    """What the applications write after the snapshot: rows that join the person, and one that leaves."""
    view = demo.view()
    mine = rows_of(view, {subject})
    found = customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")])
    enrolment = sa.create_engine(demo.urls["enrolment"])
    elearning = sa.create_engine(demo.urls["elearning"])
    try:
        customers = sa.Table("customers", sa.MetaData(), autoload_with=enrolment)
        with enrolment.begin() as conn:
            conn.execute(
                customers.insert().values(
                    customer_id=NEW_CUSTOMER,
                    customer_number="C900001",
                    full_name="Ny Kundesen",
                    email="  " + found["email"].upper(),
                    created_at=later,
                    last_contact_at=later,
                    updated_at=None,
                )
            )
        accounts = sa.Table("accounts", sa.MetaData(), autoload_with=elearning)
        moved = min(int(str(pk)) for pk in mine[("elearning", "accounts")])
        with elearning.begin() as conn:
            conn.execute(
                accounts.insert().values(
                    account_id=NEW_ACCOUNT,
                    login_email="ny.konto@example.org",
                    username="ny_konto_900002",
                    full_name="Ny Kontosen",
                    customer_number=found["customer_number"],
                    created_at=later,
                    updated_at=later,
                )
            )
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == moved)
                .values(login_email="flyttet@example.org", phone=None, customer_number=None, updated_at=later)
            )
    finally:
        enrolment.dispose()
        elearning.dispose()
    return found


def _ledger(url: str) -> list[tuple]:
    """The ledger without what differs between two runs of the same work (run and batch ids, times)."""
    engine = sa.create_engine(url)
    columns = [ledger.c[c] for c in ("as_of", "source", "table_name", "pk", "subject", "action", "fields")]
    columns += [ledger.c[c] for c in ("purpose", "rule", "legal_basis", "key_id", "status")]
    try:
        with engine.connect() as conn:
            return sorted(tuple(map(str, r)) for r in conn.execute(sa.select(*columns)))
    finally:
        engine.dispose()


def _carry_out(demo: DemoEstate, request_id: int, said: list[str]) -> dict[str, object]:
    with demo.connect() as estate:
        outcome = carry_out_request(
            demo.config, estate, demo.keyring, request_id, run_id=f"test-{request_id}", now=NOW, progress=said.append
        )
    assert outcome.status is RequestStatus.DONE, outcome.summary
    assert outcome.receipt is not None
    receipt = outcome.receipt.model_dump(exclude={"run_id", "completed_at", "received_at", "deadline"})
    assert isinstance(receipt, dict)
    return receipt


def _one_estate(
    monkeypatch: pytest.MonkeyPatch, databases: ServerDatabases, tmp_path: Path, later: dt.datetime, *, indexed: bool
) -> tuple[DemoEstate, dict[str, dict[str, object]], list[str]]:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=40, seed=61)
    person, objector = _people(demo)
    apply_day(demo, ANCHOR)
    found = _change_after_the_daily_run(demo, person, later)
    if not indexed:
        control = sa.create_engine(demo.control_url)
        with control.begin() as conn:
            conn.execute(index_marks.delete())
        control.dispose()
    said: list[str] = []
    receipts = {
        "erasure": _carry_out(demo, demo.register(RequestKind.ERASURE, email=found["email"]), said),
        "objection": _carry_out(
            demo, demo.register(RequestKind.MARKETING_OBJECTION, email=_email(demo, objector)), said
        ),
    }
    apply_day(demo, ANCHOR + dt.timedelta(days=1))
    return demo, receipts, said


def _email(demo: DemoEstate, subject: str) -> str:
    view = demo.view()
    return customer_identifiers(demo.urls["enrolment"], rows_of(view, {subject})[("enrolment", "customers")])["email"]


def test_a_request_through_the_index_does_what_a_whole_read_does(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).replace(microsecond=0)  # after the snapshot
    local = later.astimezone(ZoneInfo("Europe/Copenhagen")).replace(tzinfo=None)  # as the applications write it
    indexed, by_index, said_indexed = _one_estate(monkeypatch, databases, tmp_path, local, indexed=True)
    whole, by_reading, said_whole = _one_estate(monkeypatch, databases, tmp_path, local, indexed=False)

    assert any(m.startswith("rows of the person and changed rows of enrolment.customers") for m in said_indexed)
    assert not any(m.startswith("identifiers of") for m in said_indexed), said_indexed
    assert "identifiers of enrolment.customers" in said_whole

    assert by_index == by_reading
    assert by_index["erasure"]["found"] is True
    for source in indexed.urls:
        ours, theirs = table_digests(indexed.urls[source]), table_digests(whole.urls[source])
        del ours["retention_applied_batches"], theirs["retention_applied_batches"]  # the batch ids differ
        assert ours == theirs, source
    assert _ledger(indexed.control_url) == _ledger(whole.control_url)

    # the rows written after the daily run joined the person and were erased with them
    entries = {(r[1], r[2], r[3], r[7]) for r in _ledger(indexed.control_url)}
    assert ("enrolment", "customers", str(NEW_CUSTOMER), "request:erasure") in entries
    assert ("elearning", "accounts", str(NEW_ACCOUNT), "request:erasure") in entries

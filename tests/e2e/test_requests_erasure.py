"""Erasure requests change the databases as the catalog says, on SQLite, PostgreSQL and MariaDB.

Three people are erased: one found only in the enrolment database, one in two databases, one in all three,
each with invoices still inside their bookkeeping period. Afterwards the databases themselves are compared
with their content before: only the erased people's rows changed, the held vouchers are byte-for-byte the
same, no replaced personal value is left, and every receipt's counts are what the databases show.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import anonymizers
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.receipts import VerificationReceipt
from retention.requests.register import get_request
from retention.requests.view import read_person
from tests.databases import ServerDatabases
from tests.requests_support import (
    NOW,
    apply_day,
    column_names,
    customer_identifiers,
    demo_estate,
    estate_contents,
    held_vouchers,
    rows_of,
)

pytestmark = pytest.mark.servers


def _control_dump(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(repr(tuple(r)) for t in md.sorted_tables for r in conn.execute(sa.select(t)))
    finally:
        engine.dispose()


def test_erasure_of_people_in_one_two_and_three_databases(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=50, seed=23)
    view = demo.view()
    customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
    chosen: dict[int, str] = {}
    for count in (1, 2, 3):
        candidates = view.index.subjects.loc[view.index.subjects["sources"] == count, "subject"]
        for subject in sorted(candidates):
            if subject in customers and held_vouchers(view, subject) > 0:
                chosen[count] = subject
                break
    assert sorted(chosen) == [1, 2, 3], "the demo estate lacks a person of each kind"
    rows = {n: rows_of(view, {s}) for n, s in chosen.items()}
    # a request reads only the person's rows beyond the identifier tables, and still finds all of them
    with demo.connect() as estate:
        for n, subject in chosen.items():
            tokens = list(t for t, s in view.index.tokens.items() if s == subject)[:1]
            assert rows_of(read_person(demo.config, estate, demo.keyring, tokens), {subject}) == rows[n]
    assert [len({s for s, _ in rows[n]}) for n in (1, 2, 3)] == [1, 2, 3]
    identifiers = {n: customer_identifiers(demo.urls["enrolment"], rows[n][("enrolment", "customers")]) for n in rows}
    given = {
        1: {"customer_number": " " + identifiers[1]["customer_number"].lower()},
        2: {"phone": identifiers[2]["phone"]},
        3: {"email": "  " + identifiers[3]["email"].upper() + " "},
    }
    before = estate_contents(demo.urls)
    columns = column_names(demo.urls)

    requests = {n: demo.register(RequestKind.ERASURE, **given[n]) for n in (1, 2, 3)}
    receipts = {}
    for n, request_id in requests.items():
        outcome = demo.carry_out(request_id)
        assert outcome.status is RequestStatus.DONE, outcome.summary
        assert outcome.receipt is not None and outcome.receipt.found is True
        assert outcome.receipt.subjects == [chosen[n]]
        assert outcome.receipt.verification == VerificationReceipt(passed=True, problems=[])
        receipts[n] = outcome.receipt

    after = estate_contents(demo.urls)
    catalog = demo.config.catalog
    for n in chosen:
        receipt_tables = {(t.source, t.table): t for t in receipts[n].tables}
        assert set(receipt_tables) == set(rows[n])
        for tid, pks in rows[n].items():
            entry = catalog.table(*tid)
            gone = {pk for pk in pks if pk not in after[tid]}
            changed = {pk for pk in pks if pk in after[tid] and after[tid][pk] != before[tid][pk]}
            same = pks - gone - changed
            t = receipt_tables[tid]
            # the receipt says what the database shows
            assert (t.rows_found, t.deleted) == (len(pks), len(gone)), tid
            # rows whose only personal data is free text without e-mails or phones are scrubbed into themselves
            same_but_processed = t.pseudonymised - len(changed)
            assert same_but_processed >= 0, tid
            if same_but_processed:
                assert all(not anonymizers.get(entry.columns[f].anonymizer).replaces for f in t.fields_changed), tid
            kept = t.kept_rows
            unchanged = sum(u.rows for u in t.unchanged)
            assert kept + unchanged + same_but_processed == len(same), tid
            all_delete = all(demo.config.policy.purposes[p].action.value == "delete" for p in entry.purposes)
            if all_delete:
                assert gone == pks, f"{tid}: every row of a delete-only table is deleted"
            if tid in {("enrolment", "invoices"), ("enrolment", "payments")}:
                frame = view.tagged[tid].frame
                live = set(frame.loc[frame["deadline:bookkeeping"] > pd.Timestamp(NOW), "pk"].tolist()) & pks
                assert live and not live & (gone | changed), "vouchers inside their bookkeeping period stay as they are"
                assert not gone, "an expired voucher is pseudonymised, not deleted"
                assert kept == len(live) and all(k.reason == "bookkeeping" for k in t.kept)
                assert all(k.until is not None and k.until >= "2026-12-31" for k in t.kept)
            # no replaced personal value is left in the person's rows that stay and are not held
            names = columns[tid]
            for pk in changed:
                for column, spec in entry.columns.items():
                    i = names.index(column)
                    old = before[tid][pk][i]
                    if old is not None and anonymizers.get(spec.anonymizer).replaces:
                        assert after[tid][pk][i] != old, f"{tid}.{column} still holds its value"
        assert receipts[n].summary.startswith("Erased:")
    # nobody else's rows changed
    erased: dict[tuple[str, str], set[object]] = {}
    for per_table in rows.values():
        for tid, pks in per_table.items():
            erased.setdefault(tid, set()).update(pks)
    for tid, table_rows in before.items():
        others = set(table_rows) - erased.get(tid, set())
        assert {pk: after[tid].get(pk) for pk in others} == {pk: table_rows[pk] for pk in others}, tid
    # the partner shares of the erased people became the recipients to tell (Art 19)
    for n in (1, 2, 3):
        shares = rows[n].get(("enrolment", "partner_shares"), set())
        told = sum(r.records for r in receipts[n].recipients)
        assert told == len(shares)
    # done: the identifiers given are gone from the control database, only subject keys remain
    dump = _control_dump(demo.control_url)
    engine = sa.create_engine(demo.control_url)
    try:
        for n, request_id in requests.items():
            request = get_request(engine, request_id)
            assert request is not None and request.identifiers is None and request.tokens == ()
            assert request.subjects == (chosen[n],)
            for value in identifiers[n].values():
                assert value not in dump and value.strip().lower() not in dump.lower()
    finally:
        engine.dispose()
    # a second erasure of the same person finds nothing more to change
    again = demo.register(RequestKind.ERASURE, **given[3])
    outcome = demo.carry_out(again, now=NOW)
    assert outcome.status is RequestStatus.DONE
    assert estate_contents(demo.urls) == after


def test_an_erased_person_keeps_one_surrogate_identity_through_later_daily_runs(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an erasure, the daily runs of the years after (every purpose of the person's rows expiring one
    by one) may clear or delete what the erasure pseudonymised, but never give it a second surrogate."""
    demo = demo_estate(monkeypatch, databases, tmp_path, people=40, seed=29)
    view = demo.view()
    customers = view.tagged[("enrolment", "customers")].frame
    accounts = set(view.tagged[("elearning", "accounts")].frame["subject"])
    subject = sorted(s for s in customers["subject"] if s in accounts)[0]
    rows = rows_of(view, {subject})
    identifiers = customer_identifiers(demo.urls["enrolment"], rows[("enrolment", "customers")])
    request_id = demo.register(RequestKind.ERASURE, email=identifiers["email"])
    assert demo.carry_out(request_id).status is RequestStatus.DONE
    erased = estate_contents(demo.urls)
    for years in (2, 4, 6):
        apply_day(demo, NOW.date().replace(year=NOW.year + years))
    later = estate_contents(demo.urls)
    names = column_names(demo.urls)
    replacing = {
        (tid, column)
        for tid in rows
        for column, spec in demo.config.catalog.table(*tid).columns.items()
        if anonymizers.get(spec.anonymizer).replaces
    }
    assert replacing, "the person has no pseudonymised column to follow"
    compared = 0
    for tid, pks in rows.items():
        for pk in pks & set(later[tid]):
            for column in {c for t, c in replacing if t == tid}:
                at = names[tid].index(column)
                now_value, erased_value = later[tid][pk][at], erased[tid][pk][at]
                assert now_value in (erased_value, None), f"{tid} {column}: a second surrogate"
                compared += now_value is not None
    assert compared, "no surrogate survived to be compared"

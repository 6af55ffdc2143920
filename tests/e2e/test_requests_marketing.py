"""A marketing objection removes the person's marketing data at once and keeps it away through the daily runs.

The person signs up again with the same e-mail (in other letters' case) after objecting; the next daily run
removes the new subscription and its tracking, while administrative data and other people's sign-ups stay;
the run after it finds nothing of the person's marketing data to bring back or remove.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.config.catalog import IdentifierKind
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.person_plan import SUPPRESSION_PURPOSE
from retention.requests.suppression import is_suppressed, load_suppressions
from retention.storage.schema import ledger
from tests.databases import server_databases
from tests.requests_support import (
    ANCHOR,
    customer_identifiers,
    demo_estate,
    estate_contents,
    rows_of,
    run_retention_steps,
)

MARKETING = {("newsletter", t) for t in ("subscribers", "sends", "events", "interest_profiles")}


def _insert(url: str, table: str, row: dict[str, object]) -> None:
    engine = sa.create_engine(url)
    try:
        t = sa.Table(table, sa.MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            conn.execute(t.insert().values(**row))
    finally:
        engine.dispose()


def _int_keys(rows: Mapping[object, object]) -> list[int]:
    """The primary keys of a table's rows, which are integers in the newsletter database."""
    keys = [pk for pk in rows if isinstance(pk, int)]
    assert len(keys) == len(rows), "integer primary keys"
    return keys


def _count(url: str, table: str, column: str, values: list[object]) -> int:
    engine = sa.create_engine(url)
    try:
        t = sa.Table(table, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(t.c[column].in_(values))).scalar_one()
    finally:
        engine.dispose()


def test_marketing_objection_survives_the_next_daily_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=31)
        view = demo.view()
        subscribers = set(view.tagged[("newsletter", "subscribers")].frame["subject"])
        customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
        person = next(s for s in sorted(subscribers & customers) if len(rows_of(view, {s}).keys() & MARKETING) >= 3)
        mine = rows_of(view, {person})
        email = customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")])["email"]
        before = estate_contents(demo.urls)

        outcome = demo.carry_out(demo.register(RequestKind.MARKETING_OBJECTION, email=email))
        assert outcome.status is RequestStatus.DONE and outcome.receipt is not None
        after = estate_contents(demo.urls)
        for tid, pks in mine.items():
            if tid in MARKETING:
                assert not pks & set(after[tid]), f"{tid}: marketing rows of the person are deleted"
            else:
                assert {pk: after[tid][pk] for pk in pks} == {pk: before[tid][pk] for pk in pks}, "admin data untouched"
        deleted = sum(t.deleted for t in outcome.receipt.tables)
        assert deleted == sum(len(pks) for tid, pks in mine.items() if tid in MARKETING)

        engine = sa.create_engine(demo.control_url)
        try:
            suppressions = load_suppressions(engine)
            assert person in suppressions.subjects and suppressions.tokens
            dump = repr(engine.connect().execute(sa.text("SELECT * FROM marketing_suppressions")).all())
            assert email.strip().lower() not in dump.lower()
            assert is_suppressed(engine, demo.keyring.subject, IdentifierKind.EMAIL, email.upper())
            assert not is_suppressed(engine, demo.keyring.subject, IdentifierKind.EMAIL, "someone.else@example.dk")
        finally:
            engine.dispose()

        # the person signs up again with the same address, written differently; somebody new signs up too
        newsletter = demo.urls["newsletter"]
        top = max(
            max(_int_keys(after[("newsletter", t)]), default=0) for t in ("subscribers", "events", "interest_profiles")
        )
        back, stranger = top + 1, top + 2
        signed_up = dt.datetime.combine(ANCHOR, dt.time(12))
        for sid, address in ((back, "  " + email.upper()), (stranger, "ny.person@example.dk")):
            _insert(
                newsletter,
                "subscribers",
                {"subscriber_id": sid, "email": address, "consent_at": signed_up, "consent_text": "Ja tak"},
            )
            _insert(
                newsletter, "events", {"event_id": sid, "subscriber_id": sid, "kind": "open", "occurred_at": signed_up}
            )
            _insert(
                newsletter,
                "interest_profiles",
                {"profile_id": sid, "subscriber_id": sid, "interests": "yoga", "score": 3, "updated_at": signed_up},
            )
        day = ANCHOR
        result = run_retention_steps(day, confirm_large_plan=True)
        assert result.success
        assert _count(newsletter, "subscribers", "subscriber_id", [back]) == 0
        assert _count(newsletter, "events", "subscriber_id", [back]) == 0
        assert _count(newsletter, "interest_profiles", "subscriber_id", [back]) == 0
        assert _count(newsletter, "subscribers", "subscriber_id", [stranger]) == 1
        assert _count(newsletter, "interest_profiles", "subscriber_id", [stranger]) == 1
        materialized = {
            e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
        assert materialized["marketing_suppression"]["rows_removed"].value == 3

        assert run_retention_steps(day + dt.timedelta(days=1)).success
        final = estate_contents(demo.urls)
        for tid, pks in mine.items():
            if tid in MARKETING:
                assert not pks & set(final[tid])
        engine = sa.create_engine(demo.control_url)
        try:
            with engine.connect() as conn:
                recorded = conn.execute(
                    sa.select(ledger.c.table_name, ledger.c.pk).where(ledger.c.purpose == SUPPRESSION_PURPOSE)
                ).all()
        finally:
            engine.dispose()
        assert sorted(recorded) == sorted(
            [("events", str(back)), ("interest_profiles", str(back)), ("subscribers", str(back))]
        )

"""Identifiers are data: SQL injection strings that are still an e-mail address or a customer number, and
mixed scripts, are stored exactly, matched only through keyed tokens, and harm nothing; an empty string or
10,000 characters are refused at the door; on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.config.catalog import IdentifierKind
from retention.config.requests import load_request_settings
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.model import MAX_IDENTIFIER_CHARS
from retention.requests.register import RequestInputError, check_identifier, register_request
from tests.databases import ServerDatabases
from tests.requests_support import demo_estate, estate_contents, stored_request

pytestmark = pytest.mark.servers

PLANTED_EMAIL = "Zoë.Ñandú+тест@例え.テスト"
LONG = ("ü;'\"\\ Ω" * 2000)[:10_000]


def _plant(url: str) -> int:
    """A customer whose e-mail mixes Latin, Cyrillic and Japanese."""
    engine = sa.create_engine(url)
    try:
        customers = sa.Table("customers", sa.MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            new_id = conn.execute(sa.select(sa.func.max(customers.c.customer_id))).scalar_one() + 1
            conn.execute(
                customers.insert().values(
                    customer_id=new_id,
                    customer_number="C-ΩMEGA-7",
                    full_name="Zoë Ñandú Иванова 山田",
                    email=PLANTED_EMAIL,
                    created_at=dt.datetime(2025, 5, 1, 10, 0),
                    last_contact_at=dt.datetime(2026, 2, 1, 10, 0),
                )
            )
        return new_id
    finally:
        engine.dispose()


def test_hostile_identifiers_are_stored_and_matched_safely(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=20, seed=41)
    planted = _plant(demo.urls["enrolment"])
    hostile = {
        RequestKind.ERASURE: {"email": "x'OR'1'='1'--@example.dk"},
        RequestKind.ACCESS: {"phone": "+45 99 99 99 99", "customer_number": '" OR 1=1 --'},
        RequestKind.RESTRICTION: {"customer_number": "'; DELETE FROM subject_requests WHERE '1'='1"},
        RequestKind.MARKETING_OBJECTION: {"email": "o'brien+'--@example.dk"},
    }
    for refused in ({"email": ""}, {"email": LONG}, {"email": "x'); DROP TABLE customers; --"}, {"phone": "'; --"}):
        with pytest.raises(RequestInputError):
            demo.register(RequestKind.ERASURE, **refused)
    ids = {kind: demo.register(kind, **given) for kind, given in hostile.items()}
    mixed = demo.register(RequestKind.ERASURE, email="  ZOË.ÑANDÚ+ТЕСТ@例え.テスト ")
    engine = sa.create_engine(demo.control_url)
    try:
        for kind, given in hostile.items():
            assert stored_request(engine, ids[kind]).identifiers == given, "stored exactly as given"
        assert stored_request(engine, mixed).identifiers == {"email": "  ZOË.ÑANDÚ+ТЕСТ@例え.テスト "}
        before = estate_contents(demo.urls)
        for kind, request_id in ids.items():
            outcome = demo.carry_out(request_id)
            assert outcome.status is RequestStatus.DONE, kind
            assert outcome.receipt is not None, kind
            assert outcome.receipt.found is False and outcome.receipt.tables == []
            assert outcome.receipt.summary.startswith("Nothing was found about this person"), kind
        assert estate_contents(demo.urls) == before, "nothing in the estate changed"
        outcome = demo.carry_out(mixed)
        assert outcome.status is RequestStatus.DONE and outcome.receipt is not None and outcome.receipt.found is True
        customers = estate_contents({"enrolment": demo.urls["enrolment"]})[("enrolment", "customers")]
        assert customers[planted][3] != PLANTED_EMAIL and "Zoë" not in customers[planted][2]
        for request_id in [*ids.values(), mixed]:
            request = stored_request(engine, request_id)
            assert request.status is RequestStatus.DONE and request.identifiers is None
        with pytest.raises(ValueError, match="lone surrogate"):
            check_identifier(IdentifierKind.EMAIL, "a\ud800b@example.dk")
        with pytest.raises(ValueError, match="characters"):
            check_identifier(IdentifierKind.EMAIL, "x" * (MAX_IDENTIFIER_CHARS + 1))
        with pytest.raises(ValueError, match="at least one identifier"):
            register_request(
                engine,
                demo.keyring.subject,
                RequestKind.ERASURE,
                {},
                load_request_settings(demo.config),
                demo.config.policy.timezone,
            )
    finally:
        engine.dispose()

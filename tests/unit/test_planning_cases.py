"""Table-driven planning cases on a small hand-built estate, through the real snapshot, index, tags and plan."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from retention.rules.calendar import to_utc
from retention.storage.schema import ensure_schema, restrictions
from tests.mini_estate import Shop, shop_policy, ts

D = dt.date.fromisoformat


def make_shop(
    tmp_path: Path, rows: dict[str, list[dict[str, Any]]], catalog: dict[str, Any] | None = None, **policy: Any
) -> Shop:
    shop = Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'crm.db'}",
        f"sqlite:///{tmp_path / 'control.db'}",
        shop_policy(**policy),
        **(catalog or {}),
    )
    shop.insert(rows)
    return shop


PERSON = {"email": "p@example.dk", "password": "hash", "note": "likes yoga"}


def test_last_interaction_and_event_clocks_with_field_minimisation(tmp_path: Path) -> None:
    shop = make_shop(
        tmp_path,
        {"people": [{"id": 1, **PERSON, "created_at": ts("2019-05-01 09:00"), "last_seen": ts("2020-01-10 10:00")}]},
    )
    security = ("people", 1, "clear", "security", ("password",))
    assert shop.plan(D("2020-07-09")) == set()
    # security (6 months after last login) has expired; the note is still needed by the live service purpose
    assert shop.plan(D("2020-07-10")) == {security}
    assert shop.plan(D("2023-01-09")) == {security}
    # 3 years after the last interaction every purpose has expired and service deletes the row
    assert shop.plan(D("2023-01-10")) == {("people", 1, "delete", "service", ())}


def test_financial_year_boundaries_and_held_children(tmp_path: Path) -> None:
    shop = make_shop(
        tmp_path,
        {
            "people": [{"id": 2, **PERSON, "created_at": ts("2010-01-01 12:00"), "last_seen": ts("2010-02-01 12:00")}],
            "orders": [
                {"id": 10, "person_id": 2, "invoice_date": D("2024-12-31"), "billing_name": "P", "amount": 5},
                {"id": 11, "person_id": 2, "invoice_date": D("2025-01-01"), "billing_name": "P", "amount": 5},
            ],
        },
    )
    person = {
        ("people", 2, "pseudonymise", "service", ("email", "note", "password")),
        # nothing is live any more, so security clears every field it needed, the note included
        ("people", 2, "clear", "security", ("note", "password")),
    }
    result = shop.result(D("2029-12-31"))
    plan = shop.plan(D("2029-12-31"))
    # the person is due for deletion but vouchers in their bookkeeping period reference them: pseudonymised
    assert plan == person
    assert result.plan.held[("crm", "orders")] == {"bookkeeping": 2}
    notes = set(result.plan.entries[("crm", "people")]["note"])
    assert any("referenced by kept rows" in n for n in notes)
    assert shop.plan(D("2030-01-01")) == person | {("orders", 10, "pseudonymise", "bookkeeping", ("billing_name",))}
    assert ("orders", 11, "pseudonymise", "bookkeeping", ("billing_name",)) not in shop.plan(D("2030-12-31"))
    assert ("orders", 11, "pseudonymise", "bookkeeping", ("billing_name",)) in shop.plan(D("2031-01-01"))


def test_financial_year_ending_30_june(tmp_path: Path) -> None:
    shop = make_shop(
        tmp_path,
        {
            "people": [{"id": 2, "created_at": ts("2024-01-01 12:00"), "last_seen": ts("2024-02-01 12:00")}],
            "orders": [
                {"id": 20, "person_id": 2, "invoice_date": D("2024-06-30"), "billing_name": "P"},
                {"id": 21, "person_id": 2, "invoice_date": D("2024-07-01"), "billing_name": "P"},
            ],
        },
        financial_year_end="06-30",
    )

    def orders(day: str) -> set[int]:
        return {pk for table, pk, *_ in shop.plan(D(day)) if table == "orders"}

    assert orders("2029-06-30") == set()
    assert orders("2029-07-01") == {20}
    assert orders("2030-06-30") == {20}
    assert orders("2030-07-01") == {20, 21}


def test_leap_day(tmp_path: Path) -> None:
    shop = make_shop(
        tmp_path,
        {
            "people": [{"id": 3, **PERSON, "created_at": ts("2024-02-01 08:00"), "last_seen": ts("2024-02-29 12:00")}],
            "subs": [
                {
                    "id": 30,
                    "email": "s@example.dk",
                    "phone": "11223344",
                    "consent_at": ts("2024-01-01 08:00"),
                    "course_end": D("2024-02-29"),
                }
            ],
        },
        **{"purposes.security": {"period": "1 years"}},
    )
    # 29 February plus one year is 28 February
    assert ("people", 3, "clear", "security", ("password",)) not in shop.plan(D("2025-02-27"))
    assert ("people", 3, "clear", "security", ("password",)) in shop.plan(D("2025-02-28"))
    # a course that ends on a leap day: the date means the whole day, so the note goes the day after
    special = ("subs", 30, "clear", "special", ("phone",))
    assert special not in shop.plan(D("2024-02-29"))
    assert special in shop.plan(D("2024-03-01"))


def test_business_time_zone_decides_the_day_of_naive_timestamps(tmp_path: Path) -> None:
    rows = {
        "subs": [
            {
                "id": 31,
                "email": "s@example.dk",
                "consent_at": ts("2023-01-01 08:00"),
                "unsubscribed_at": ts("2023-03-26 02:30"),
            }
        ]
    }  # a time that does not exist in Copenhagen
    shop = make_shop(tmp_path, rows)
    gone = ("subs", 31, "clear", "newsletter", ("email",))
    assert gone not in shop.plan(D("2023-03-25"))
    assert gone in shop.plan(D("2023-03-26"))


def test_aware_and_naive_timestamps() -> None:
    tz = pd.Timestamp("2023-01-01", tz="Europe/Copenhagen").tz
    naive = to_utc(pd.Series([dt.datetime(2023, 3, 1, 23, 30), None]), tz)
    assert naive[0] == pd.Timestamp("2023-03-01 22:30", tz="UTC")
    assert pd.isna(naive[1])
    aware = to_utc(pd.Series([dt.datetime(2023, 3, 1, 23, 30, tzinfo=dt.UTC)]), tz)
    assert aware[0] == pd.Timestamp("2023-03-01 23:30", tz="UTC")
    mixed = to_utc(
        pd.Series([dt.datetime(2023, 7, 1, 12, 0), dt.datetime(2023, 7, 1, 12, 0, tzinfo=dt.UTC)], dtype=object), tz
    )
    assert list(mixed) == [pd.Timestamp("2023-07-01 10:00", tz="UTC"), pd.Timestamp("2023-07-01 12:00", tz="UTC")]


def test_missing_dates_are_kept_and_reported(tmp_path: Path) -> None:
    shop = make_shop(tmp_path, {"people": [{"id": 4, **PERSON, "created_at": None, "last_seen": None}]})
    result = shop.result(D("2040-01-01"))
    assert result.plan.total() == 0
    assert result.plan.undated[("crm", "people")] == {"service": 1}


def test_identity_joins_case_spaces_phone_formats_and_two_emails(tmp_path: Path) -> None:
    """With the phone declared a strong identifier, a shared phone joins two e-mail addresses."""
    shop = make_shop(
        tmp_path,
        {
            "people": [
                {
                    "id": 5,
                    "email": " Anna.Hansen@Example.DK ",
                    "phone": "+45 12 34 56 78",
                    "created_at": ts("2018-01-01 08:00"),
                    "last_seen": ts("2019-01-01 08:00"),
                },
                {"id": 6, "email": "a@x.dk", "phone": "0045 8765 4321", "created_at": ts("2018-01-01 08:00")},
                {"id": 7, "email": "someone.else@x.dk", "created_at": ts("2018-01-01 08:00")},
            ],
            "subs": [
                {
                    "id": 50,
                    "email": "anna.hansen@example.dk",
                    "phone": "12345678",
                    "consent_at": ts("2022-06-01 08:00"),
                },
                {"id": 60, "email": "b@y.dk", "phone": "87 65 43 21", "consent_at": ts("2018-01-01 08:00")},
                {"id": 61, "email": "B@Y.DK", "consent_at": ts("2018-01-01 08:00")},
            ],
        },
        catalog={"identifier_strength": {"phone": "strong"}},
    )
    result = shop.result(D("2022-06-02"))
    people = result.index.subject_of("crm", "people")
    subs = result.index.subject_of("crm", "subs")
    assert people[5] == subs[50]
    assert people[6] == subs[60] == subs[61]
    assert len({people[5], people[6], people[7]}) == 3
    # the newsletter consent in 2022 is Anna's latest interaction, so her customer record lives on
    assert not any(e[:2] == ("people", 5) and e[3] == "service" for e in shop.plan(D("2022-06-02")))
    assert ("people", 5, "delete", "service", ()) in shop.plan(D("2025-06-02"))
    # stable across runs: a new run gives the same subject keys
    assert shop.result(D("2030-01-01")).index.subject_of("crm", "people")[5] == people[5]


def test_a_weak_phone_never_joins_people_whose_e_mails_differ(tmp_path: Path) -> None:
    """By default the phone is weak: colleagues sharing an office phone stay two people, a row known only by
    that phone belongs to neither, and a phone only one person uses still joins their rows."""
    office, own = "+45 70 10 20 30", "+45 40 11 22 33"
    rows: dict[str, list[dict[str, Any]]] = {
        "people": [
            {"id": 1, "email": "ann@firm.dk", "phone": office, "created_at": ts("2018-01-01 08:00")},
            {"id": 2, "email": "bo@firm.dk", "phone": office, "created_at": ts("2018-01-01 08:00")},
            {"id": 3, "email": "cy@home.dk", "phone": own, "created_at": ts("2018-01-01 08:00")},
        ],
        "subs": [
            {"id": 10, "email": "ann.private@mail.dk", "phone": office, "consent_at": ts("2018-01-01 08:00")},
            {"id": 11, "phone": office, "consent_at": ts("2018-01-01 08:00")},
            {"id": 12, "phone": "70102030", "consent_at": ts("2018-01-01 08:00")},
            {"id": 13, "phone": "40 11 22 33", "consent_at": ts("2018-01-01 08:00")},
        ],
    }
    shop = make_shop(tmp_path, rows)
    index = shop.result(D("2022-06-02")).index
    people, subs = index.subject_of("crm", "people"), index.subject_of("crm", "subs")
    assert len({people[1], people[2], subs[10]}) == 3, "a shared phone joined people whose e-mails differ"
    assert subs[11] != subs[12] and not {subs[11], subs[12]} & {people[1], people[2], subs[10]}
    assert subs[13] == people[3], "a phone one person alone uses still joins their rows"
    assert len(index.ambiguous) == 1 and next(iter(index.ambiguous)).startswith("p:")
    assert not index.ambiguous & set(index.tokens), "an ambiguous phone points at somebody"
    # declared strong, the same phone makes one person of all of them, as the catalog then says
    (tmp_path / "strong").mkdir()
    strong = make_shop(tmp_path / "strong", rows, catalog={"identifier_strength": {"phone": "strong"}})
    joined = strong.result(D("2022-06-02")).index
    assert len({*joined.subject_of("crm", "people")[[1, 2]], *joined.subject_of("crm", "subs")[[10, 11, 12]]}) == 1


def test_overlapping_purposes_clear_only_what_no_live_purpose_needs(tmp_path: Path) -> None:
    shop = make_shop(
        tmp_path,
        {
            "subs": [
                {
                    "id": 70,
                    "email": "s@example.dk",
                    "phone": "11223344",
                    "consent_at": ts("2023-01-01 08:00"),
                    "unsubscribed_at": ts("2023-02-01 08:00"),
                    "course_end": D("2023-06-30"),
                }
            ]
        },
    )
    # unsubscribed: newsletter (delete) expired while special still runs, so only its own field is cleared
    assert shop.plan(D("2023-02-01")) == {("subs", 70, "clear", "newsletter", ("email",))}
    # once the course has ended too, nothing needs the row: it is deleted
    assert shop.plan(D("2023-07-01")) == {("subs", 70, "delete", "newsletter", ())}


def test_restricted_subjects_are_held(tmp_path: Path) -> None:
    shop = make_shop(
        tmp_path,
        {"people": [{"id": 8, **PERSON, "created_at": ts("2010-01-01 08:00"), "last_seen": ts("2010-02-01 08:00")}]},
    )
    result = shop.result(D("2030-01-01"))
    assert ("people", 8, "delete", "service", ()) in shop.plan(D("2030-01-01"))
    subject = result.index.subject_of("crm", "people")[8]
    control = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    ensure_schema(control)
    with control.begin() as conn:
        conn.execute(restrictions.insert().values(subject=subject, placed_at=dt.datetime.now(dt.UTC)))
    result = shop.result(D("2030-01-01"))
    assert result.plan.total() == 0
    assert result.plan.held[("crm", "people")] == {"restriction": 1}


def test_guard_stops_a_plan_that_touches_too_much(tmp_path: Path) -> None:
    from retention.daily.planning import GuardError, check_guard

    rows = [{"id": i, **PERSON, "created_at": ts("2010-01-01 08:00")} for i in range(1, 11)]
    shop = make_shop(tmp_path, {"people": rows}, guard={"max_share": 0.5, "min_rows": 5})
    plan = shop.result(D("2030-01-01")).plan
    with pytest.raises(GuardError, match=r"crm\.people: 10 of 10 rows \(100%\).*--confirm-large-plan"):
        check_guard(plan, shop.config.policy, confirmed=False)
    check_guard(plan, shop.config.policy, confirmed=True)

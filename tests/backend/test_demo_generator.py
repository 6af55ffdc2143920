"""The demo estate: deterministic, counted right, and holding every situation the engine has to handle."""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES, demo_metadata
from tests.databases import ServerDatabases

ANCHOR = datetime.date(2025, 6, 1)
ANCHOR_DT = datetime.datetime(2025, 6, 1)
Rows = dict[str, dict[str, list[dict]]]

EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_IN_TEXT = re.compile(r"(?:\+45|0045)? ?\d{2} ?\d{2} ?\d{2} ?\d{2}")
PHONE_FORMATS = {
    "+45 12 34 56 78": re.compile(r"^\+45 \d{2} \d{2} \d{2} \d{2}$"),
    "12345678": re.compile(r"^\d{8}$"),
    "0045 1234 5678": re.compile(r"^0045 \d{4} \d{4}$"),
    "12 34 56 78": re.compile(r"^\d{2} \d{2} \d{2} \d{2}$"),
    "+4512345678": re.compile(r"^\+45\d{8}$"),
}


def sqlite_urls(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    return {source: f"sqlite:///{folder / f'{source}.db'}" for source in DEMO_SOURCES}


def read_estate(urls: dict[str, str]) -> Rows:
    """Every row of every demo table, ordered by primary key, as plain dicts."""
    out: Rows = {}
    for source, url in urls.items():
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                out[source] = {
                    table.name: [
                        dict(row._mapping) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
                    ]
                    for table in demo_metadata(source).sorted_tables
                }
        finally:
            engine.dispose()
    return out


def email_key(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def phone_key(value: str | None) -> str | None:
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if len(digits) == 12 and digits.startswith("0045"):
        return digits[4:]
    if len(digits) == 10 and digits.startswith("45"):
        return digits[2:]
    return digits


def identities(rows: Rows) -> dict[str, list[tuple[str | None, str | None, str | None]]]:
    """(e-mail, phone, customer number) of each person-row, normalised, per source."""
    customers = rows["enrolment"]["customers"]
    subscribers = rows["newsletter"]["subscribers"]
    accounts = rows["elearning"]["accounts"]
    return {
        "enrolment": [(email_key(r["email"]), phone_key(r["phone"]), r["customer_number"]) for r in customers],
        "newsletter": [(email_key(r["email"]), phone_key(r["phone"]), None) for r in subscribers],
        "elearning": [(email_key(r["login_email"]), phone_key(r["phone"]), r["customer_number"]) for r in accounts],
    }


def years_before(years: int, months: int = 0) -> datetime.datetime:
    month = ANCHOR.month - months
    year = ANCHOR.year - years + (month - 1) // 12
    return ANCHOR_DT.replace(year=year, month=(month - 1) % 12 + 1)


def both_sides(values: Iterable[datetime.datetime | None], deadline: datetime.datetime) -> tuple[int, int]:
    present = [v for v in values if v is not None]
    return sum(v < deadline for v in present), sum(v >= deadline for v in present)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, int]], Rows]:
    urls = sqlite_urls(tmp_path_factory.mktemp("estate"))
    counts = generate_demo_estate(urls, people=1000, seed=7, anchor=ANCHOR)
    return counts, read_estate(urls)


def test_same_seed_same_estate_other_seed_another(tmp_path: Path) -> None:
    first, again, other = (sqlite_urls(tmp_path / name) for name in ("first", "again", "other"))
    generate_demo_estate(first, people=250, seed=11, anchor=ANCHOR)
    generate_demo_estate(again, people=250, seed=11, anchor=ANCHOR)
    generate_demo_estate(other, people=250, seed=12, anchor=ANCHOR)
    reference = read_estate(first)
    assert read_estate(again) == reference
    different = read_estate(other)
    assert different["enrolment"]["customers"] != reference["enrolment"]["customers"]
    assert different["newsletter"]["events"] != reference["newsletter"]["events"]


def test_counts_and_progress_match_the_database(tmp_path: Path) -> None:
    urls = sqlite_urls(tmp_path)
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    counts = generate_demo_estate(
        urls, people=400, anchor=ANCHOR, progress=lambda source, table, rows: seen[(source, table)].append(rows)
    )
    rows = read_estate(urls)
    assert counts == {source: {t: len(r) for t, r in tables.items()} for source, tables in rows.items()}
    assert all(n > 0 for tables in counts.values() for n in tables.values())
    for (source, table), reports in seen.items():
        assert reports == sorted(reports)
        assert reports[-1] == counts[source][table]
    assert {key for key in seen} == {(s, t) for s, tables in counts.items() for t in tables}


def test_a_filled_estate_is_not_overwritten_unless_replaced(tmp_path: Path) -> None:
    urls = sqlite_urls(tmp_path)
    counts = generate_demo_estate(urls, people=60, anchor=ANCHOR)
    with pytest.raises(ValueError, match=r"enrolment.*replace"):
        generate_demo_estate(urls, people=60, anchor=ANCHOR)
    assert generate_demo_estate(urls, people=60, anchor=ANCHOR, replace=True) == counts
    assert {s: {t: len(r) for t, r in tables.items()} for s, tables in read_estate(urls).items()} == counts


def test_only_the_named_sources_are_generated_and_unknown_ones_refused(tmp_path: Path) -> None:
    urls = sqlite_urls(tmp_path)
    assert set(generate_demo_estate({"newsletter": urls["newsletter"]}, people=50, anchor=ANCHOR)) == {"newsletter"}
    with pytest.raises(ValueError, match="crm"):
        generate_demo_estate({"crm": urls["enrolment"]}, people=50, anchor=ANCHOR)


def test_history_spans_eight_years_and_nothing_lies_after_the_anchor(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    earliest = datetime.datetime(ANCHOR.year - 8, ANCHOR.month, ANCHOR.day)
    stamps: list[datetime.datetime] = []
    for source in DEMO_SOURCES:
        for table in demo_metadata(source).sorted_tables:
            for column in table.columns:
                if isinstance(column.type, sa.DateTime):
                    stamps.extend(r[column.name] for r in rows[source][table.name] if r[column.name] is not None)
    assert all(s.tzinfo is None for s in stamps)
    assert min(stamps) >= earliest
    assert min(stamps) < earliest + datetime.timedelta(days=60)
    assert max(stamps) < ANCHOR_DT
    assert max(r["invoice_date"] for r in rows["enrolment"]["invoices"]) < ANCHOR


def test_enrolment_situations(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    enrolment = rows["enrolment"]
    assert all(re.fullmatch(r"C\d{6}", r["customer_number"]) for r in enrolment["customers"])

    enrolments = enrolment["enrolments"]
    jobcenter = [r for r in enrolments if r["channel"] == "jobcenter"]
    assert jobcenter and all(re.fullmatch(r"Jobcenter \S.*", r["jobcenter"]) for r in jobcenter)
    assert {"Jobcenter Aarhus", "Jobcenter København"} <= {r["jobcenter"] for r in jobcenter}
    assert all(r["channel"] == "direct" and r["jobcenter"] is None for r in enrolments if r not in jobcenter)
    assert len(jobcenter) < len(enrolments) / 2

    needs = [r for r in enrolments if r["special_needs"]]
    assert any(r["course_end"] < ANCHOR for r in needs) and any(r["course_end"] >= ANCHOR for r in needs)
    assert any(r["course_start"] <= ANCHOR <= r["course_end"] for r in enrolments), "a course running"
    assert any(r["course_start"] > ANCHOR for r in enrolments), "a course still to come"
    assert all(r["course_start"] <= r["course_end"] for r in enrolments)
    assert all(r["enrolled_at"] < ANCHOR_DT for r in enrolments)

    invoices = enrolment["invoices"]
    assert any((r["invoice_date"].month, r["invoice_date"].day) == (12, 31) for r in invoices)
    assert any((r["invoice_date"].month, r["invoice_date"].day) == (1, 1) for r in invoices)
    # Vouchers on both sides of five years after the end of their (calendar) financial year.
    assert any(r["invoice_date"].year <= ANCHOR.year - 6 for r in invoices)
    assert any(r["invoice_date"].year > ANCHOR.year - 6 for r in invoices)
    paid = {r["invoice_id"] for r in enrolment["payments"]}
    assert 0.75 < len(paid) / len(invoices) < 1
    assert {r["partner"] for r in enrolment["partner_shares"]} == {
        "Europe Active",
        "VIA Institute",
        "Materials shipper",
    }

    older, younger = both_sides((r["last_contact_at"] for r in enrolment["customers"]), years_before(3))
    assert older and younger


def test_newsletter_situations(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    newsletter = rows["newsletter"]
    older, younger = both_sides((r["unsubscribed_at"] for r in newsletter["subscribers"]), years_before(2))
    assert older and younger, "unsubscribed long ago and recently"
    assert any(r["unsubscribed_at"] is None for r in newsletter["subscribers"])
    assert newsletter["sends"]

    events = newsletter["events"]
    assert {r["kind"] for r in events} == {"open", "click"}
    assert all(r["ip"] and r["user_agent"] for r in events)
    older, younger = both_sides((r["occurred_at"] for r in events), years_before(1, months=1))
    assert older and younger, "events older and younger than 13 months"

    older, younger = both_sides((r["updated_at"] for r in newsletter["interest_profiles"]), years_before(2))
    assert older and younger


def test_elearning_situations(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    elearning = rows["elearning"]
    accounts = elearning["accounts"]
    assert len({r["username"] for r in accounts}) == len(accounts)
    assert all(re.fullmatch(r"\$2b\$12\$[./A-Za-z0-9]{53}", r["password_hash"]) for r in accounts)
    never = [r for r in accounts if r["last_login_at"] is None]
    assert never and all(r["last_login_ip"] is None for r in never)
    assert any(r["last_login_at"] and r["last_login_at"] < years_before(3) for r in accounts), "inactive 3+ years"
    older, younger = both_sides((r["last_login_at"] for r in accounts), years_before(0, months=6))
    assert older and younger
    customer_numbers = {r["customer_number"] for r in rows["enrolment"]["customers"]}
    linked = [r["customer_number"] for r in accounts if r["customer_number"]]
    assert linked and set(linked) <= customer_numbers
    assert any(r["phone"] is None for r in accounts) and any(r["phone"] for r in accounts)

    assert elearning["progress"] and elearning["exam_results"]
    assert {r["kind"] for r in elearning["uploads"]} == {"photo", "video"}
    memberships = elearning["community_memberships"]
    assert any(r["withdrawn_at"] for r in memberships) and any(r["withdrawn_at"] is None for r in memberships)


def test_forum_texts_carry_some_e_mails_and_phones(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    elearning = rows["elearning"]
    posts, comments = elearning["forum_posts"], elearning["forum_comments"]
    texts = [r["body"] for r in posts + comments]
    with_contact = [t for t in texts if EMAIL_IN_TEXT.search(t) or PHONE_IN_TEXT.search(t)]
    assert 0.08 < len(with_contact) / len(texts) < 0.25
    assert any(EMAIL_IN_TEXT.search(r["body"]) for r in posts)
    assert any(PHONE_IN_TEXT.search(r["body"]) for r in posts)
    assert any(EMAIL_IN_TEXT.search(t) and PHONE_IN_TEXT.search(t) for t in texts)

    login = {r["account_id"]: email_key(r["login_email"]) for r in elearning["accounts"]}
    own = [r for r in posts + comments if login[r["account_id"]] in r["body"].lower()]
    assert own, "a writer giving their own e-mail"
    post_times = {r["post_id"]: r["posted_at"] for r in posts}
    assert all(r["posted_at"] > post_times[r["post_id"]] for r in comments)


def test_the_same_person_hides_behind_messy_identifiers(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    raw_emails: dict[str, set[tuple[str, str]]] = defaultdict(set)
    raw_phones: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for source, table, email_col in (
        ("enrolment", "customers", "email"),
        ("newsletter", "subscribers", "email"),
        ("elearning", "accounts", "login_email"),
    ):
        for r in rows[source][table]:
            if r[email_col]:
                email = email_key(r[email_col])
                assert email is not None  # a non-empty value has a key
                raw_emails[email].add((source, r[email_col]))
            if r["phone"]:
                phone = phone_key(r["phone"])
                assert phone is not None
                raw_phones[phone].add((source, r["phone"]))

    def spread(found: set[tuple[str, str]]) -> bool:
        return len({s for s, _ in found}) >= 2 and len({raw for _, raw in found}) >= 2

    messy_emails = [found for found in raw_emails.values() if spread(found)]
    assert messy_emails, "one e-mail written differently in two sources"
    assert any(any(raw != raw.strip() for _, raw in found) for found in messy_emails), "surrounding spaces"
    assert any(any(raw.strip() != raw.strip().lower() for _, raw in found) for found in messy_emails), "case"
    assert [found for found in raw_phones.values() if spread(found)], "one phone in different formats"
    all_phones = [raw for found in raw_phones.values() for _, raw in found]
    for name, pattern in PHONE_FORMATS.items():
        assert any(pattern.match(p) for p in all_phones), f"phone format {name}"
    assert all(len(key) == 8 and key[0] != "0" for key in raw_phones)


def test_people_are_in_one_two_or_three_sources(estate: tuple[dict, Rows]) -> None:
    _, rows = estate
    ids = identities(rows)
    emails = {s: {e for e, _, _ in people if e} for s, people in ids.items()}
    phones = {s: {p for _, p, _ in people if p} for s, people in ids.items()}
    numbers = {s: {c for _, _, c in people if c} for s, people in ids.items()}

    for source, people in ids.items():
        others = [s for s in DEMO_SOURCES if s != source]
        alone = [
            (e, p, c)
            for e, p, c in people
            if all(e not in emails[o] and p not in phones[o] and c not in numbers[o] for o in others)
        ]
        assert alone, f"someone only in {source}"

    assert emails["enrolment"] & emails["newsletter"] & emails["elearning"], "someone in all three"
    assert (emails["enrolment"] & emails["newsletter"]) - emails["elearning"], "someone in exactly two"

    # A work e-mail in one source, a private one in another: only the phone links them.
    by_phone: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for source, people in ids.items():
        for e, p, _ in people:
            if p and e:
                by_phone[p].add((source, e))
    linked_by_phone_only = [
        found
        for found in by_phone.values()
        if len({s for s, _ in found}) >= 2
        and len({e for _, e in found}) >= 2
        and all(sum(e in emails[s] for s in DEMO_SOURCES) == 1 for _, e in found)
    ]
    assert linked_by_phone_only


@pytest.mark.servers
def test_the_generator_writes_the_same_estate_on_every_backend(
    databases: ServerDatabases, backend: str, tmp_path: Path
) -> None:
    urls = {source: databases.new_url(source) for source in DEMO_SOURCES}
    counts = generate_demo_estate(urls, people=120, seed=5, anchor=ANCHOR)
    rows = read_estate(urls)
    assert counts == {source: {t: len(r) for t, r in tables.items()} for source, tables in rows.items()}
    reference = sqlite_urls(tmp_path / f"reference-{backend}")
    assert generate_demo_estate(reference, people=120, seed=5, anchor=ANCHOR) == counts
    assert rows == read_estate(reference)

"""The rules of the policy, each in its one home, on small frames: holds, expiry, references, minimisation,
the foreign-key order. The daily plan, subject requests and the access export all call these functions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retention.config.loading import load_config
from retention.config.policy import Action
from retention.rules import columns
from retention.rules.clocks import expired, last_day_kept
from retention.rules.holds import (
    HOLD_BOOKKEEPING,
    HOLD_LEGAL_CLAIM,
    HOLD_RESTRICTION,
    Holds,
    held_rows,
    hold_reasons,
    hold_why,
)
from retention.rules.minimisation import fields_freed, only_filled_fields
from retention.rules.references import children_first, referenced_by_staying

CONFIG = Path(__file__).resolve().parents[2] / "config"
MOMENT = pd.Timestamp("2026-03-01T12:00", tz="UTC")
UTC = "datetime64[us, UTC]"


@pytest.fixture(scope="module")
def config():
    return load_config(CONFIG / "catalog.yaml", CONFIG / "policy.yaml")


def test_a_deadline_at_the_moment_itself_has_not_passed_and_a_missing_one_never_does() -> None:
    deadlines = pd.Series([MOMENT - pd.Timedelta(microseconds=1), MOMENT, pd.NaT], dtype="datetime64[us, UTC]")
    assert expired(deadlines, MOMENT).tolist() == [True, False, False]


def test_the_last_day_kept_is_the_local_day_before_the_deadline() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Copenhagen")
    # 2030-01-01 00:00 in Copenhagen is the first instant after a period that ends with 2029
    deadline = pd.Timestamp("2029-12-31T23:00", tz="UTC")
    kept = last_day_kept(deadline, tz)
    assert kept is not None
    assert kept.isoformat() == "2029-12-31"
    assert last_day_kept(pd.NaT, tz) is None


def test_holds_first_reason_wins_and_a_voucher_without_a_date_is_held(config) -> None:
    policy = config.policy
    rows = pd.DataFrame(
        {
            columns.PK: [1, 2, 3, 4, 5],
            columns.SUBJECT: ["a", "claim", "restricted", "claim", "a"],
            columns.deadline("bookkeeping"): pd.Series(
                [
                    MOMENT + pd.Timedelta(days=1),
                    MOMENT - pd.Timedelta(days=1),
                    MOMENT - pd.Timedelta(days=1),
                    MOMENT,
                    pd.NaT,
                ],
                dtype="datetime64[us, UTC]",
            ),
        }
    )
    holds = Holds(restricted=frozenset({"restricted"}), legal_claim=frozenset({"claim"}))
    invoices = ("enrolment", "invoices")
    reasons = hold_reasons(rows, invoices, ["bookkeeping"], policy, holds, MOMENT)
    assert reasons.tolist() == [
        HOLD_BOOKKEEPING,
        HOLD_LEGAL_CLAIM,
        HOLD_RESTRICTION,
        HOLD_BOOKKEEPING,
        HOLD_BOOKKEEPING,
    ]
    # a table outside the bookkeeping hold holds nothing for bookkeeping
    other = hold_reasons(rows, ("enrolment", "customers"), ["bookkeeping"], policy, holds, MOMENT)
    assert other.tolist() == ["", HOLD_LEGAL_CLAIM, HOLD_RESTRICTION, HOLD_LEGAL_CLAIM, ""]
    # a person's own request is not held back by their restriction
    mine = hold_reasons(rows, ("enrolment", "customers"), ["bookkeeping"], policy, holds.without_restrictions(), MOMENT)
    assert mine.tolist() == ["", HOLD_LEGAL_CLAIM, "", HOLD_LEGAL_CLAIM, ""]


class _Table:
    def __init__(self, frame: pd.DataFrame, refs: dict[str, str], purposes: tuple[str, ...] = ()) -> None:
        self.frame = frame
        self.refs = refs
        self.purposes = purposes


def test_a_hold_reaches_every_descendant_by_foreign_key_or_parent_link_with_its_reason_and_end(config) -> None:
    policy = config.policy
    later = MOMENT + pd.Timedelta(days=400)
    invoices = _Table(
        pd.DataFrame(
            {
                columns.PK: [1, 2],
                columns.SUBJECT: ["a", "a"],
                columns.deadline("bookkeeping"): pd.Series([later, MOMENT - pd.Timedelta(days=1)], dtype=UTC),
            }
        ),
        {},
        ("bookkeeping",),
    )
    # lines reference their invoice through a declared foreign key; the second line's invoice is past its period
    lines = _Table(
        pd.DataFrame({columns.PK: [10, 11, 12], columns.SUBJECT: ["a"] * 3, columns.ref("invoice_id"): [1, 2, 1]}),
        {columns.ref("invoice_id"): "invoices"},
        ("service_delivery",),
    )
    # notes hang below lines through the catalog's parent link only (no foreign key in the database)
    notes = _Table(
        pd.DataFrame({columns.PK: [100, 101], columns.SUBJECT: ["a", "a"], columns.FK: [12, 11]}),
        {columns.FK: "lines"},
        ("service_delivery",),
    )
    tables = {("enrolment", "invoices"): invoices, ("enrolment", "lines"): lines, ("enrolment", "notes"): notes}
    held = held_rows(tables, policy, Holds(), MOMENT)
    assert held[("enrolment", "invoices")]["reason"].tolist() == [HOLD_BOOKKEEPING, ""]
    assert held[("enrolment", "lines")]["reason"].tolist() == [HOLD_BOOKKEEPING, "", HOLD_BOOKKEEPING]
    assert held[("enrolment", "notes")]["reason"].tolist() == [HOLD_BOOKKEEPING, ""]
    assert held[("enrolment", "notes")]["until"].tolist()[0] == later
    assert pd.isna(held[("enrolment", "lines")]["until"].iloc[1])
    # a child's own reason comes first: a legal claim on the person is reported as such
    claimed = held_rows(tables, policy, Holds(legal_claim=frozenset({"a"})), MOMENT)
    assert claimed[("enrolment", "lines")]["reason"].tolist() == [HOLD_LEGAL_CLAIM] * 3


def test_a_row_referenced_by_a_row_that_stays_is_kept_and_one_whose_referrers_go_is_not() -> None:
    parent = _Table(pd.DataFrame({columns.PK: [1, 2, 3]}), {})
    child = _Table(
        pd.DataFrame({columns.PK: [10, 11, 12], columns.ref("parent_id"): [1, 2, None]}),
        {columns.ref("parent_id"): "parents"},
    )
    elsewhere = _Table(
        pd.DataFrame({columns.PK: [20], columns.ref("parent_id"): [3]}), {columns.ref("parent_id"): "parents"}
    )
    tables = {("db", "parents"): parent, ("db", "children"): child, ("other", "children"): elsewhere}
    pks = parent.frame[columns.PK]
    assert referenced_by_staying(pks, ("db", "parents"), tables, {}).tolist() == [True, True, False]
    leaving = {("db", "children"): {11}}
    assert referenced_by_staying(pks, ("db", "parents"), tables, leaving).tolist() == [True, False, False]


def test_children_come_before_the_tables_they_reference_and_cycles_keep_their_order() -> None:
    parents = {"invoice_lines": {"invoices"}, "invoices": {"customers"}, "customers": set(), "notes": {"notes"}}
    assert children_first(["customers", "invoices", "notes", "invoice_lines"], parents.__getitem__) == [
        "notes",
        "invoice_lines",
        "invoices",
        "customers",
    ]
    cycle = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert children_first(["a", "b", "c"], cycle.__getitem__) == ["c", "a", "b"]


def test_a_field_is_freed_only_when_no_live_purpose_needs_it(config) -> None:
    subscribers = config.catalog.table("newsletter", "subscribers")
    freed = fields_freed(subscribers, ["newsletter"])
    assert "full_name" in freed and "email" in freed
    assert fields_freed(subscribers, []) == set()
    accounts = config.catalog.table("elearning", "accounts")
    assert fields_freed(accounts, ["security"]) == {"password_hash", "last_login_ip"}


def test_only_filled_fields_keeps_every_filled_field_of_a_wide_table() -> None:
    """Seventy fields: the field number 64 and above are narrowed like the first ones (no 64-bit mask)."""
    fields = tuple(f"f{i}" for i in range(70))
    filled = {f"f{i}" for i in (0, 63, 64, 65, 69)}
    frame = pd.DataFrame({columns.PK: [1, 2], **{columns.has(f): [f in filled, False] for f in fields}})
    entries = pd.DataFrame(
        {
            "pk": [1, 2, 1],
            "subject": ["s", "t", "s"],
            "action": [Action.PSEUDONYMISE.value, Action.PSEUDONYMISE.value, Action.DELETE.value],
            "fields": [fields, fields, ()],
            "purpose": ["p", "p", "q"],
        }
    )
    narrowed = only_filled_fields(entries, frame)
    assert narrowed["fields"].tolist() == [tuple(f for f in fields if f in filled), ()]
    assert narrowed["action"].tolist() == [Action.PSEUDONYMISE.value, Action.DELETE.value]


def test_a_held_voucher_cites_the_bookkeeping_law_the_policy_names(config) -> None:
    """An estate under another country's law is not told of Danish law in its receipts."""
    policy = config.policy
    bookkeeping = policy.bookkeeping_hold.purpose
    british = policy.model_copy(
        update={
            "purposes": {
                **policy.purposes,
                bookkeeping: policy.purposes[bookkeeping].model_copy(
                    update={"legal_basis": "legal obligation, Companies Act 2006 s.388 (UK GDPR Art 6(1)(c))"}
                ),
            }
        }
    )
    assert "bogføringsloven" in hold_why(HOLD_BOOKKEEPING, policy)
    assert "Companies Act 2006 s.388" in hold_why(HOLD_BOOKKEEPING, british)
    assert "bogføringsloven" not in hold_why(HOLD_BOOKKEEPING, british)
    assert "Art 18" in hold_why(HOLD_RESTRICTION, british)

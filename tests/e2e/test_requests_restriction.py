"""Restriction (Art 18): a restricted person's rows are held through the daily run, with 'restriction' as the
reason in the plan; lifting the restriction lets the next day's plan and apply act on them again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from retention.daily.flow import compute_plan
from retention.requests.kinds import RequestKind, RequestStatus
from retention.rules.holds import HOLD_BOOKKEEPING, HOLD_RESTRICTION
from tests.databases import server_databases
from tests.requests_support import (
    ANCHOR,
    NOW,
    DemoEstate,
    apply_day,
    demo_estate,
    estate_contents,
    run_retention_steps,
)


def _due(demo: DemoEstate, day: dt.date, subject: str) -> int:
    with demo.connect() as estate:
        plan = compute_plan(demo.config, estate, demo.keyring, day).plan
    return sum(int((entries["subject"] == subject).sum()) for entries in plan.entries.values())


def test_restriction_holds_through_daily_runs_and_lifting_it_resumes_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=29)
        with demo.connect() as estate:
            result = compute_plan(demo.config, estate, demo.keyring, ANCHOR)
        due: dict[str, int] = {}
        for entries in result.plan.entries.values():
            for subject, n in entries["subject"].value_counts().items():
                due[subject] = due.get(subject, 0) + int(n)
        customers = set(result.tagged[("enrolment", "customers")].frame["subject"])
        person = max((s for s in due if s in customers), key=lambda s: (due[s], s))
        pks = {tid: set(t.frame.loc[t.frame["subject"] == person, "pk"].tolist()) for tid, t in result.tagged.items()}
        pks = {tid: p for tid, p in pks.items() if p}
        customer = next(iter(pks[("enrolment", "customers")]))
        number = estate_contents({"enrolment": demo.urls["enrolment"]})[("enrolment", "customers")][customer][1]

        outcome = demo.carry_out(demo.register(RequestKind.RESTRICTION, customer_number=number))
        assert outcome.status is RequestStatus.DONE and outcome.receipt is not None
        assert outcome.receipt.document()["restriction"] == {"placed": 1, "already in force": 0}
        assert _due(demo, ANCHOR, person) == 0
        with demo.connect() as estate:
            held_keys = compute_plan(demo.config, estate, demo.keyring, ANCHOR).plan.held_keys
        reasons = set()
        for tid, rows in pks.items():
            assert rows <= set(held_keys[tid].index), f"{tid}: every row of the person is held"
            reasons |= set(held_keys[tid].loc[list(rows)])
        assert HOLD_RESTRICTION in reasons and reasons <= {HOLD_RESTRICTION, HOLD_BOOKKEEPING}

        before = estate_contents(demo.urls)
        assert run_retention_steps(ANCHOR, confirm_large_plan=True).success
        after = estate_contents(demo.urls)
        for tid, rows in pks.items():
            assert {pk: after[tid].get(pk) for pk in rows} == {pk: before[tid][pk] for pk in rows}, tid
        assert after != before, "the daily run did act on everybody else"

        lifted = demo.carry_out(demo.register(RequestKind.LIFT_RESTRICTION, customer_number=number), now=NOW)
        assert lifted.status is RequestStatus.DONE and lifted.receipt is not None
        assert lifted.receipt.document()["restriction"] == {"lifted": 1}
        day = ANCHOR + dt.timedelta(days=1)
        assert _due(demo, day, person) > 0
        apply_day(demo, day)
        resumed = estate_contents(demo.urls)
        changed = sum(1 for tid, rows in pks.items() for pk in rows if resumed[tid].get(pk) != after[tid][pk])
        assert changed > 0, "after the lift, the daily run applies the schedule to the person's rows"
        assert _due(demo, day, person) == 0

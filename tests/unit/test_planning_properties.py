"""Properties of planning on random in-memory shops: holds, deadlines, monotony over days, determinism.

The snapshots are built in memory the way `snapshot_table` builds them (same column layout, identifier tokens,
`has:` flags and UTC timestamps from naive local times); `test_in_memory_snapshots_match_snapshot_table`
checks that against the real reader, so the properties speak about what the engine really sees.
Policies vary too: every purpose's action and period is drawn, the clocks stay those of the shop.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention.config.catalog import IdentifierKind
from retention.config.loading import EstateConfig, load_config
from retention.config.policy import Action
from retention.daily.planning import Plan, plan_retention
from retention.daily.snapshot import SourceSnapshot, TableSnapshot, snapshot_source
from retention.daily.subjects import SubjectIndex, build_subject_index
from retention.daily.tagging import Tagged, tag_records
from retention.rules.calendar import end_of_day, to_utc
from retention.rules.holds import Holds
from retention.rules.identity import tokenise_series
from tests.mini_estate import KEYRING, shop_catalog, shop_metadata, shop_policy

SOURCE = "crm"
PURPOSES = ("service", "security", "bookkeeping", "newsletter", "special")
PERIODS = ("0 days", "30 days", "6 months", "13 months", "2 years", "3 years", "5 years")
EMAILS = ("anna@example.dk", " Anna@Example.DK", "bo@example.dk", "cy@example.dk", "BO@example.dk ")
PHONES = ("+45 12 34 56 78", "12345678", "87654321", "0045 8765 4321", "11 22 33 44")
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------- the shop


@dataclass(frozen=True)
class ShopRows:
    """Raw rows as the database would hold them; `restricted` / `claimed` name people and subs rows whose
    subject has a restriction or a legal claim."""

    people: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    subs: list[dict[str, Any]]
    restricted: frozenset[tuple[str, int]]
    claimed: frozenset[tuple[str, int]]


class Configs:
    """Loaded shop configurations by policy variant, through the real loader (files in a temporary folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._loaded: dict[tuple[tuple[str, str, str], ...], EstateConfig] = {}

    def get(self, variant: tuple[tuple[str, str, str], ...] = ()) -> EstateConfig:
        if variant not in self._loaded:
            folder = self.folder / f"v{len(self._loaded)}"
            folder.mkdir()
            overrides = {f"purposes.{p}": {"action": action, "period": period} for p, action, period in variant}
            (folder / "catalog.yaml").write_text(yaml.safe_dump(shop_catalog("sqlite://", "sqlite://")))
            (folder / "policy.yaml").write_text(yaml.safe_dump(shop_policy(**overrides)))
            self._loaded[variant] = load_config(folder / "catalog.yaml", folder / "policy.yaml")
        return self._loaded[variant]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Configs:
    """Module-wide, so hypothesis examples reuse loaded configurations instead of writing files each time."""
    return Configs(tmp_path_factory.mktemp("shop-configs"))


def _optional(strategy: st.SearchStrategy[Any], none_share: int = 4) -> st.SearchStrategy[Any]:
    """Mostly a value, sometimes missing (about one in `none_share`)."""
    return st.tuples(st.integers(1, none_share), strategy).map(lambda t: None if t[0] == none_share else t[1])


moments = st.datetimes(min_value=dt.datetime(2015, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
    lambda m: m.replace(microsecond=0)
)
days = st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2026, 12, 31))
as_of_days = st.dates(min_value=dt.date(2016, 1, 1), max_value=dt.date(2034, 12, 31))
policy_variants = st.lists(
    st.tuples(st.sampled_from(PURPOSES), st.sampled_from([a.value for a in Action]), st.sampled_from(PERIODS)),
    max_size=4,
    unique_by=lambda v: v[0],
).map(lambda v: tuple(sorted(v)))


@st.composite
def shop_rows(draw: st.DrawFn) -> ShopRows:
    n_people = draw(st.integers(0, 7))
    people = [
        {
            "id": i,
            "email": draw(_optional(st.sampled_from(EMAILS))),
            "phone": draw(_optional(st.sampled_from(PHONES), 2)),
            "password": draw(_optional(st.just("hash"), 2)),
            "note": draw(_optional(st.just("likes yoga"), 2)),
            "created_at": draw(_optional(moments)),
            "last_seen": draw(_optional(moments)),
        }
        for i in range(1, n_people + 1)
    ]
    orders = []
    if people:
        orders = [
            {
                "id": 100 + i,
                "person_id": draw(st.integers(1, n_people)),
                "invoice_date": draw(_optional(days, 6)),
                "billing_name": draw(_optional(st.just("P. Hansen"), 3)),
                "amount": 5,
            }
            for i in range(draw(st.integers(0, 6)))
        ]
    subs = [
        {
            "id": 200 + i,
            "email": draw(_optional(st.sampled_from(EMAILS))),
            "phone": draw(_optional(st.sampled_from(PHONES), 2)),
            "consent_at": draw(_optional(moments)),
            "unsubscribed_at": draw(_optional(moments, 2)),
            "course_end": draw(_optional(days, 2)),
        }
        for i in range(draw(st.integers(0, 5)))
    ]
    person_rows = [("people", p["id"]) for p in people] + [("subs", s["id"]) for s in subs]
    chosen = st.sampled_from(person_rows) if person_rows else st.nothing()
    restricted = draw(st.frozensets(chosen, max_size=2)) if person_rows else frozenset()
    claimed = draw(st.frozensets(chosen, max_size=1)) if person_rows else frozenset()
    return ShopRows(people, orders, subs, restricted, claimed)


# estates without a single row are included: a fresh installation must plan nothing, not crash
some_rows = shop_rows()


# ------------------------------------------------------------------------------- in-memory snapshots


def _snapshot(
    config: EstateConfig, table_name: str, rows: list[dict[str, Any]], date_only: frozenset[str]
) -> TableSnapshot:
    """What `snapshot_table` returns for these rows: the same select list, conversions and column order."""
    entry = config.catalog.table(SOURCE, table_name)
    refs = {"ref:person_id": "people"} if table_name == "orders" else {}
    dated = entry.timestamp_columns()
    selected: list[tuple[str, str]] = [(entry.pk, "pk")]
    if entry.subject.foreign_key:
        selected.append((entry.subject.foreign_key, "fk"))
    selected += [(name[4:], name) for name in refs]
    selected += [(col, f"id:{kind.value}") for kind, col in entry.subject.identifiers.items()]
    selected += [(col, f"has:{col}") for col in entry.columns]
    selected += [(col, col) for col in dated]
    columns = [alias for _, alias in selected]
    records = [
        tuple(r.get(col) is not None if alias.startswith("has:") else r.get(col) for col, alias in selected)
        for r in sorted(rows, key=lambda r: r[entry.pk])
    ]
    frame = pd.DataFrame(records, columns=columns)
    tz = config.policy.timezone
    for kind in entry.subject.identifiers:
        frame[f"id:{kind.value}"] = tokenise_series(KEYRING.subject, IdentifierKind(kind), frame[f"id:{kind.value}"])
    for col in dated:
        frame[col] = to_utc(frame[col], tz)
    for col in entry.columns:
        frame[f"has:{col}"] = frame[f"has:{col}"].astype(bool)
    return TableSnapshot(frame[columns], date_only, refs)


def in_memory_snapshots(config: EstateConfig, rows: ShopRows) -> dict[str, SourceSnapshot]:
    """The crm source as `snapshot_source` would read it (date-only columns as the database types say)."""
    return {
        SOURCE: {
            "people": _snapshot(config, "people", rows.people, frozenset()),
            "orders": _snapshot(config, "orders", rows.orders, frozenset({"invoice_date"})),
            "subs": _snapshot(config, "subs", rows.subs, frozenset({"course_end"})),
        }
    }


@dataclass
class Planned:
    config: EstateConfig
    snapshots: dict[str, SourceSnapshot]
    index: SubjectIndex
    tagged: Tagged
    holds: Holds


def prepare(config: EstateConfig, rows: ShopRows) -> Planned:
    """Snapshots, subject index and tags (all as-of independent), and the holds as subject keys."""
    snapshots = in_memory_snapshots(config, rows)
    index = build_subject_index(config.catalog, snapshots, KEYRING.subject)

    def subjects(named: frozenset[tuple[str, int]]) -> frozenset[str]:
        return frozenset(index.subject_of(SOURCE, table)[pk] for table, pk in named)

    tagged = tag_records(config.catalog, config.policy, snapshots, index)
    return Planned(config, snapshots, index, tagged, Holds(subjects(rows.restricted), subjects(rows.claimed)))


def plan_for(p: Planned, day: dt.date) -> Plan:
    """The plan of one day, with the estate's holds."""
    return plan_retention(p.config.catalog, p.config.policy, p.tagged, day, holds=p.holds)


def planned_rows(plan: Plan) -> set[tuple[str, int]]:
    """(table, pk) of every row with at least one entry."""
    return {(table, int(pk)) for (_, table), frame in plan.entries.items() for pk in frame["pk"]}


# -------------------------------------------------------------------------------------------- tests


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=shop_rows())
def test_in_memory_snapshots_match_snapshot_table(configs: Configs, tmp_path: Path, rows: ShopRows) -> None:
    """The builder the properties rely on gives exactly what the real reader gives from a database."""
    url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
    engine = sa.create_engine(url)
    try:
        md = shop_metadata()
        md.create_all(engine)
        with engine.begin() as conn:
            for name in ("people", "orders", "subs"):
                table_rows = getattr(rows, name)
                if table_rows:
                    conn.execute(
                        md.tables[name].insert(),
                        [{c.name: r.get(c.name) for c in md.tables[name].c} for r in table_rows],
                    )
        config = configs.get()
        real = snapshot_source(engine, config.catalog, SOURCE, KEYRING.subject, config.policy.timezone)
    finally:
        engine.dispose()
    built = in_memory_snapshots(config, rows)[SOURCE]
    assert set(real) == set(built)
    for table, snap in real.items():
        assert built[table].date_only == snap.date_only, table
        assert built[table].refs == snap.refs, table
        pd.testing.assert_frame_equal(built[table].frame, snap.frame, obj=table)


@FAST
@given(rows=some_rows, variant=policy_variants, day=as_of_days)
def test_held_rows_are_never_planned(configs: Configs, rows: ShopRows, variant: Any, day: dt.date) -> None:
    """Vouchers in their bookkeeping period, restricted people and legal claims are untouchable, and counted."""
    p = prepare(configs.get(variant), rows)
    plan = plan_for(p, day)
    end = end_of_day(day, p.config.policy.timezone)
    held_subjects = p.holds.restricted | p.holds.legal_claim
    expected_held = 0
    for (source, table), t in p.tagged.items():
        frame = t.frame
        held = frame["subject"].isin(held_subjects)
        if table == "orders":
            # the voucher is held while its bookkeeping deadline has not passed, or has no deadline at all
            held |= ~(frame["deadline:bookkeeping"] < end).fillna(False)
        expected_held += int(held.sum())
        held_pks = set(frame.loc[held, "pk"].astype(int))
        planned = set(plan.entries[(source, table)]["pk"].astype(int))
        assert not planned & held_pks, f"held {table} rows planned: {sorted(planned & held_pks)}"
    assert sum(sum(h.values()) for h in plan.held.values()) == expected_held


@FAST
@given(rows=some_rows, variant=policy_variants, day=as_of_days)
def test_nothing_is_planned_before_its_deadline(configs: Configs, rows: ShopRows, variant: Any, day: dt.date) -> None:
    """Each entry's own deadline has passed, and on the day before its deadline's day it is not planned; a
    deleted row has no live purpose; no field a live purpose needs is touched."""
    p = prepare(configs.get(variant), rows)
    plan = plan_for(p, day)
    tz = p.config.policy.timezone
    end = end_of_day(day, tz)
    too_early: dict[dt.date, set[tuple[str, int, str]]] = {}
    for (source, table), entries in plan.entries.items():
        t = p.tagged[(source, table)]
        by_pk = t.frame.set_index("pk")
        entry = p.config.catalog.table(source, table)
        for row in entries.itertuples():
            assert pd.notna(row.deadline) and row.deadline < end, (table, row)
            assert row.deadline == by_pk.loc[row.pk, f"deadline:{row.purpose}"], (table, row)
            first_day = row.deadline.tz_convert(tz).date()
            too_early.setdefault(first_day - dt.timedelta(days=1), set()).add((table, int(row.pk), row.purpose))
            live = [q for q in t.purposes if not by_pk.loc[row.pk, f"deadline:{q}"] < end]
            if row.action == Action.DELETE.value:
                assert not live, f"{table} {row.pk} deleted while {live} still live"
            else:
                needed = {f for q in live for f in entry.columns_needed_by(q)}
                assert not set(row.fields) & needed, f"{table} {row.pk}: {row.fields} still needed by {live}"
    for before in sorted(too_early)[-3:]:
        earlier = {
            (table, int(row.pk), row.purpose)
            for (_, table), entries in plan_for(p, before).entries.items()
            for row in entries.itertuples()
        }
        assert not too_early[before] & earlier, f"planned on {before}, before the deadline's day"


@FAST
@given(rows=some_rows, variant=policy_variants, day=as_of_days, later=st.integers(1, 4000))
def test_a_row_due_on_a_day_is_due_on_every_later_day(
    configs: Configs, rows: ShopRows, variant: Any, day: dt.date, later: int
) -> None:
    """Deadlines only pass: a backfill or a late run never un-plans a row that an earlier day planned."""
    p = prepare(configs.get(variant), rows)
    due = planned_rows(plan_for(p, day))
    for k in sorted({1, later}):
        still = planned_rows(plan_for(p, day + dt.timedelta(days=k)))
        assert due <= still, f"due on {day}, not on {day + dt.timedelta(days=k)}: {sorted(due - still)}"


def test_an_empty_estate_gives_an_empty_plan(configs: Configs) -> None:
    """A fresh installation (every table empty) has nothing to do, and must say so rather than crash."""
    p = prepare(configs.get(), ShopRows([], [], [], frozenset(), frozenset()))
    plan = plan_for(p, dt.date(2030, 1, 1))
    assert plan.total() == 0
    assert plan.table_rows == {(SOURCE, t): 0 for t in ("people", "orders", "subs")}


def test_an_estate_without_any_interaction_keeps_and_reports_everything(configs: Configs) -> None:
    """Rows whose clocks have no date are kept and reported as undated, never guessed and never a crash."""
    rows = ShopRows(
        [{"id": 1, "email": "anna@example.dk", "password": "hash"}],
        [{"id": 100, "person_id": 1, "invoice_date": dt.date(2020, 3, 1), "billing_name": "A"}],
        [{"id": 200, "email": "bo@example.dk"}],
        frozenset(),
        frozenset(),
    )
    p = prepare(configs.get(), rows)
    plan = plan_for(p, dt.date(2030, 1, 1))
    assert planned_rows(plan) == {("orders", 100)}
    assert plan.undated[(SOURCE, "people")] == {"service": 1}


def assert_same_plan(first: Plan, second: Plan) -> None:
    """Entries frame for frame (order and dtypes included), and the held, undated and row counts."""
    assert first.as_of == second.as_of
    assert list(first.entries) == list(second.entries)
    for tid, entries in first.entries.items():
        pd.testing.assert_frame_equal(entries, second.entries[tid], obj=f"{tid}")
    assert first.held == second.held
    assert first.undated == second.undated
    assert first.table_rows == second.table_rows


@FAST
@given(rows=some_rows, variant=policy_variants, day=as_of_days)
def test_planning_twice_gives_the_same_plan(configs: Configs, rows: ShopRows, variant: Any, day: dt.date) -> None:
    """Planning reads its inputs only: twice on the same tags, or on fresh tags, the plan is the same."""
    p = prepare(configs.get(variant), rows)
    before = {tid: t.frame.copy() for tid, t in p.tagged.items()}
    first = plan_for(p, day)
    for tid, frame in before.items():
        pd.testing.assert_frame_equal(p.tagged[tid].frame, frame, obj=f"tagged {tid} after planning")
    assert_same_plan(first, plan_for(p, day))
    again = prepare(p.config, rows)
    assert again.holds == p.holds
    assert_same_plan(first, plan_for(again, day))


@FAST
@given(rows=some_rows, variant=policy_variants, day=as_of_days, share=st.integers(0, 3), offset=st.integers(0, 3))
def test_entries_the_ledger_holds_change_nothing_else(
    configs: Configs, rows: ShopRows, variant: Any, day: dt.date, share: int, offset: int
) -> None:
    """A run killed mid-apply leaves part of the day's entries in the ledger, some still pending (their rows
    not yet deleted). Planning the day again must give exactly the rest: a parent whose children the ledger
    is deleting is deleted too, not pseudonymised because its children still look kept."""
    p = prepare(configs.get(variant), rows)
    full = plan_for(p, day)
    done = {
        tid: {
            (str(pk), purpose)
            for i, (pk, purpose) in enumerate(zip(f["pk"], f["purpose"], strict=True))
            if (i + offset) % 4 < share
        }
        for tid, f in full.entries.items()
    }
    again = plan_retention(p.config.catalog, p.config.policy, p.tagged, day, holds=p.holds, done=done)
    for tid, entries in full.entries.items():
        pairs = zip(entries["pk"], entries["purpose"], strict=True)
        rest = entries.loc[np.array([(str(pk), purpose) not in done[tid] for pk, purpose in pairs], dtype=bool)]
        assert sorted(map(tuple, again.entries[tid][["pk", "action", "purpose"]].astype(str).to_numpy())) == sorted(
            map(tuple, rest[["pk", "action", "purpose"]].astype(str).to_numpy())
        ), tid


def test_a_parent_whose_children_the_ledger_is_deleting_is_deleted_too(configs: Configs) -> None:
    """The case behind the property above: the order's deletion is recorded (its batch still pending, the row
    still there), so the person it references goes as well, as in the plan made before the kill."""
    seen = dt.datetime(2016, 1, 1, 12)
    rows = ShopRows(
        [{"id": 1, "email": "anna@example.dk", "created_at": seen, "last_seen": seen}],
        [{"id": 100, "person_id": 1, "invoice_date": dt.date(2016, 3, 1), "billing_name": "A", "amount": 5}],
        [],
        frozenset(),
        frozenset(),
    )
    p = prepare(configs.get((("bookkeeping", "delete", "5 years"),)), rows)
    day = dt.date(2030, 1, 1)

    def actions(plan: Plan, table: str) -> list[tuple[str, str]]:
        entries = plan.entries[(SOURCE, table)]
        return sorted(zip(entries["pk"].astype(str), entries["action"], strict=True))

    full = plan_for(p, day)
    assert actions(full, "orders") == [("100", "delete")]
    assert actions(full, "people") == [("1", "delete")]
    pending = {(SOURCE, "orders"): {("100", "bookkeeping")}}
    again = plan_retention(p.config.catalog, p.config.policy, p.tagged, day, holds=p.holds, done=pending)
    assert actions(again, "orders") == []
    assert actions(again, "people") == [("1", "delete")]

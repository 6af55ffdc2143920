"""The same estate gives the same plan on SQLite, PostgreSQL and MariaDB, entry for entry.

Dates, timestamps, empty strings and NULLs come back from each driver in their own way; if any of that leaks
into identity or deadlines, one backend deletes what another keeps. The demo estate is deterministic per seed,
size and anchor, so the three plans must be equal.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

from retention.config.loading import load_config
from retention.config.policy import Action
from retention.daily.flow import PlanningResult, compute_plan
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from retention.storage.engines import Estate
from tests.databases import BACKENDS, server_databases
from tests.mini_estate import KEYRING

# one worker builds the estates once for the whole module under `pytest -n 2 --dist loadgroup`
pytestmark = [pytest.mark.servers, pytest.mark.xdist_group("plan_backends")]

ANCHOR = dt.date(2025, 6, 1)
DAYS = (ANCHOR - dt.timedelta(days=400), ANCHOR, ANCHOR + dt.timedelta(days=800))
PEOPLE = 300
SEED = 41
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

Entry = tuple[str, str, int, str, str, str, tuple[str, ...], pd.Timestamp, str]


def full_entries(result: PlanningResult) -> list[Entry]:
    """(source, table, pk, subject, action, purpose, fields, deadline, note) of every entry, sorted."""
    out: list[Entry] = []
    for (source, table), frame in result.plan.entries.items():
        for row in frame.itertuples():
            out.append(
                (
                    source,
                    table,
                    int(row.pk),
                    row.subject,
                    row.action,
                    row.purpose,
                    tuple(row.fields),
                    pd.Timestamp(row.deadline),
                    row.note,
                )
            )
    return sorted(out, key=lambda e: (e[0], e[1], e[2], e[5]))


def subjects_per_row(result: PlanningResult) -> dict[tuple[str, str], dict[int, str]]:
    """(source, table) -> pk -> subject key, with plain int keys so backends compare equal."""
    return {tid: {int(pk): s for pk, s in series.items()} for tid, series in result.index.rows.items()}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, dt.date], PlanningResult]]:
    """The plans of DAYS on each backend: one estate per backend (same seed), its own control database."""
    config = load_config(CONFIG_DIR / "catalog.yaml", CONFIG_DIR / "policy.yaml")
    out: dict[tuple[str, dt.date], PlanningResult] = {}
    with ExitStack() as stack, pytest.MonkeyPatch.context() as monkeypatch:
        for backend in BACKENDS:
            dbs = stack.enter_context(server_databases(backend, tmp_path_factory.mktemp(backend)))
            urls = {source: dbs.new_url(source) for source in DEMO_SOURCES}
            generate_demo_estate(urls, people=PEOPLE, seed=SEED, anchor=ANCHOR)
            for source, url in urls.items():
                monkeypatch.setenv(config.catalog.sources[source].url_env, url)
            monkeypatch.setenv(config.catalog.control_url_env, dbs.new_url("control"))
            estate = Estate.connect(config.catalog)
            try:
                assert {s: e.url.get_backend_name() for s, e in estate.sources.items()} == dict.fromkeys(
                    DEMO_SOURCES, {"mariadb": "mysql"}.get(backend, backend)
                )
                for day in DAYS:
                    out[(backend, day)] = compute_plan(config, estate, KEYRING, day)
            finally:
                estate.dispose()
        yield out


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_plans_are_identical_on_every_backend(results: dict[tuple[str, dt.date], PlanningResult], day: dt.date) -> None:
    """Same rows, same subject, action, purpose, fields, deadline and note, whatever the database."""
    reference = full_entries(results[("sqlite", day)])
    assert len(reference) == len(set(reference)), "an entry is listed twice"
    for backend in BACKENDS[1:]:
        entries = full_entries(results[(backend, day)])
        missing = sorted(set(reference) - set(entries))[:5]
        extra = sorted(set(entries) - set(reference))[:5]
        assert entries == reference, f"{backend} differs from sqlite on {day}: missing {missing}, extra {extra}"
        assert results[(backend, day)].plan.held == results[("sqlite", day)].plan.held
        assert results[(backend, day)].plan.undated == results[("sqlite", day)].plan.undated
        assert results[(backend, day)].plan.table_rows == results[("sqlite", day)].plan.table_rows


def test_subject_keys_and_last_interactions_are_identical_on_every_backend(
    results: dict[tuple[str, dt.date], PlanningResult],
) -> None:
    """Identity is decided before any rule: the same person must get the same key and clock everywhere."""
    reference = results[("sqlite", ANCHOR)]
    rows = subjects_per_row(reference)
    assert sum(len(r) for r in rows.values()) > PEOPLE
    # people who appear in several databases are one subject: fewer subjects than person rows
    person_rows = sum(len(rows[t]) for t in [("enrolment", "customers"), ("newsletter", "subscribers")])
    assert len(reference.index.subjects) < person_rows + len(rows[("elearning", "accounts")])
    for backend in BACKENDS[1:]:
        other = results[(backend, ANCHOR)]
        assert subjects_per_row(other) == rows, backend
        pd.testing.assert_frame_equal(other.index.subjects, reference.index.subjects, obj=backend)


def test_plans_are_not_empty_and_use_every_action(results: dict[tuple[str, dt.date], PlanningResult]) -> None:
    """Equal empty plans would prove nothing: every day has work, and every action type is exercised."""
    for day in DAYS:
        entries = full_entries(results[("sqlite", day)])
        assert entries, f"nothing planned on {day}"
        actions = {e[4] for e in entries}
        assert actions == {a.value for a in Action}, f"{day}: {actions}"
        tables = {(e[0], e[1]) for e in entries}
        assert {s for s, _ in tables} == set(DEMO_SOURCES), f"{day}: {tables}"
    # deadlines only pass: a row planned on a day is planned on every later day, and the later day has more
    rows = [{e[:3] for e in full_entries(results[("sqlite", day)])} for day in DAYS]
    for earlier, later in itertools.pairwise(rows):
        assert earlier < later, sorted(earlier - later)[:5]

"""A backfill gives each day the plan a run on that day would give, and changes nothing (plan only)."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import pytest

from pipelines.runner import run_daily
from retention.config.keys import load_keyring
from retention.config.loading import load_config
from retention.daily.flow import compute_plan
from retention.demo.generator import generate_demo_estate
from retention.storage.engines import Estate
from tests.mini_estate import entries_of
from tests.support import point_engine_at, table_digests

ANCHOR = dt.date(2026, 3, 1)
DAYS = [ANCHOR - dt.timedelta(days=700), ANCHOR - dt.timedelta(days=300), ANCHOR]
ROOT = Path(__file__).resolve().parents[2]


def test_backfilled_days_plan_like_runs_on_those_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = {s: f"sqlite:///{tmp_path / s}.db" for s in ("enrolment", "newsletter", "elearning")}
    generate_demo_estate(urls, people=120, seed=9, anchor=ANCHOR)
    point_engine_at(monkeypatch, urls, f"sqlite:///{tmp_path / 'control.db'}", tmp_path / "var")
    before = {s: table_digests(u) for s, u in urls.items()}

    for day in DAYS:
        result = run_daily(day, plan_only=True, confirm_large_plan=True)
        assert result.success
        steps = {e.step_key for e in result.all_events if e.is_step_success and e.step_key is not None}
        assert "retention_plan" in steps and not any(s.startswith("apply") for s in steps)

    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    keyring, _ = load_keyring(demo=False)
    estate = Estate.connect(config.catalog)
    try:
        sizes = []
        for day in DAYS:
            stored = tmp_path / "var" / "intermediate" / "retention_plan" / f"{day.isoformat()}.pickle"
            backfilled = pickle.loads(stored.read_bytes())
            assert backfilled.as_of == day
            expected = compute_plan(config, estate, keyring, day).plan
            assert entries_of(backfilled) == entries_of(expected)
            sizes.append(backfilled.total())
    finally:
        estate.dispose()
    # later days have more due, and a dry run changed no database
    assert 0 < sizes[0] < sizes[1] < sizes[2]
    assert {s: table_digests(u) for s, u in urls.items()} == before

"""The engine's footprint in Dagster's storage, after real daily runs: step outputs live one file per asset and
day outside the Dagster home and expire after RETENTION_OUTPUT_KEEP_DAYS; finished runs, their event logs and
step logs are removed by the daily job after RETENTION_RUN_KEEP_DAYS; the Dagster home keeps no step output."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.planning import RETENTION_PLAN
from pipelines.instance import local_instance
from pipelines.intermediates import IntermediateIOManager
from pipelines.runner import report_for_day, run_daily
from retention.daily.planning import Plan
from retention.demo.generator import generate_demo_estate
from tests.support import point_engine_at, stored_asset

ANCHOR = dt.date(2026, 3, 1)
DAY = 86_400


def age(paths: list[Path], days: float) -> None:
    then = time.time() - days * DAY
    for path in paths:
        os.utime(path, (then, then))


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    urls = {s: f"sqlite:///{tmp_path / s}.db" for s in ("enrolment", "newsletter", "elearning")}
    generate_demo_estate(urls, people=60, seed=5, anchor=ANCHOR)
    point_engine_at(monkeypatch, urls, f"sqlite:///{tmp_path / 'control.db'}", tmp_path / "var")
    return tmp_path / "var"


def test_outputs_are_kept_per_day_outside_the_dagster_home_and_expire(var: Path) -> None:
    # what an earlier version left in the Dagster home (Dagster's default IO manager) goes at the first run
    legacy = [var / "dagster" / "storage" / "retention_plan" / "2025-01-01"]
    legacy.append(var / "dagster" / "storage" / "snapshot" / "enrolment" / "2025-01-01")
    for path in legacy:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
    first = run_daily(ANCHOR, confirm_large_plan=True)
    assert first.success
    assert not any(p.exists() for p in legacy)
    (housekeeping,) = [
        e.materialization
        for e in first.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["run_history_pruned"])
    ]
    assert housekeeping.metadata["legacy_output_bytes_removed"].value == 2000
    assert (var / "dagster" / "storage" / first.run_id / "compute_logs").is_dir(), "the run's step logs stay"
    store = var / "intermediate"
    day_one = sorted(store.rglob(f"{ANCHOR.isoformat()}.pickle"))
    names = {p.relative_to(store).as_posix() for p in day_one}
    assert {f"snapshot/enrolment/{ANCHOR}.pickle", f"retention_plan/{ANCHOR}.pickle"} <= names, names
    outputs = [p for p in (var / "dagster" / "storage").rglob("*") if p.is_file() and "compute_logs" not in p.parts]
    assert outputs == []
    plan = stored_asset(RETENTION_PLAN, ANCHOR)
    assert isinstance(plan, Plan) and plan.as_of == ANCHOR and plan.total() > 0

    # the same day again replaces its files; a day past the keeping time (3 days) goes at the next write,
    # with a write a killed process left unfinished
    assert run_daily(ANCHOR, confirm_large_plan=True).success
    assert sorted(store.rglob(f"{ANCHOR.isoformat()}.pickle")) == day_one
    stray = day_one[0].with_name(f"{ANCHOR.isoformat()}.pickleabc.part")
    stray.write_bytes(b"half")
    age([*day_one, stray], 3.5)
    second = ANCHOR + dt.timedelta(days=1)
    assert run_daily(second, confirm_large_plan=True).success
    assert not any(p.exists() for p in [*day_one, stray])
    assert (store / "retention_plan" / f"{second.isoformat()}.pickle").exists()
    assert stored_asset(RETENTION_PLAN, second).as_of == second
    with pytest.raises(FileNotFoundError, match="RETENTION_OUTPUT_KEEP_DAYS"):
        stored_asset(RETENTION_PLAN, ANCHOR)

    # the report of the expired day is still written, from the current data, and says so
    files, notes = report_for_day(ANCHOR)
    assert files.html.exists()
    assert any("RETENTION_OUTPUT_KEEP_DAYS" in n for n in notes), notes


def test_a_longer_keeping_time_keeps_older_outputs(var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_OUTPUT_KEEP_DAYS", "10")
    assert run_daily(ANCHOR, confirm_large_plan=True).success
    day_one = sorted((var / "intermediate").rglob(f"{ANCHOR.isoformat()}.pickle"))
    age(day_one, 5)
    assert run_daily(ANCHOR + dt.timedelta(days=1), confirm_large_plan=True).success
    assert all(p.exists() for p in day_one)


def backdate_run(home: Path, run_id: str, days: int) -> None:
    """Make a finished run look `days` older in the SQLite run storage, as if it had run then."""
    conn = sqlite3.connect(home / "history" / "runs.db")
    with conn:
        conn.execute(
            "UPDATE runs SET create_timestamp = datetime(create_timestamp, ?) WHERE run_id = ?",
            (f"-{days} days", run_id),
        )
    conn.close()


def test_the_daily_job_removes_runs_past_their_keeping_time(var: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = var / "dagster"
    old = run_daily(ANCHOR, confirm_large_plan=True)
    recent = run_daily(ANCHOR, confirm_large_plan=True)
    assert old.success and recent.success
    assert (home / "storage" / old.run_id / "compute_logs").is_dir()
    backdate_run(home, old.run_id, 91)
    backdate_run(home, recent.run_id, 89)

    monkeypatch.setenv("RETENTION_RUN_KEEP_DAYS", "0")  # 0 keeps every run
    kept = run_daily(ANCHOR + dt.timedelta(days=1), confirm_large_plan=True)
    with local_instance() as instance:
        assert instance.get_run_by_id(old.run_id) is not None

    monkeypatch.delenv("RETENTION_RUN_KEEP_DAYS")  # the default: 90 days
    pruning = run_daily(ANCHOR + dt.timedelta(days=2), confirm_large_plan=True)
    assert pruning.success
    with local_instance() as instance:
        assert instance.get_run_by_id(old.run_id) is None
        assert list(instance.all_logs(old.run_id)) == []
        assert {recent.run_id, kept.run_id, pruning.run_id} <= {r.run_id for r in instance.get_runs()}
        (materialization,) = [
            e.materialization
            for e in pruning.get_asset_materialization_events()
            if e.materialization.asset_key == dg.AssetKey(["run_history_pruned"])
        ]
    assert materialization.metadata["runs_removed"].value == 1
    assert not (home / "storage" / old.run_id).exists()
    assert (home / "storage" / recent.run_id).exists()


def test_the_io_manager_hands_over_in_process_and_names_what_expired(tmp_path: Path) -> None:
    """Within a run's process a later step gets the very object an earlier one stored (no second copy); another
    process reads the file; an expired day names the asset, the day and the setting."""
    key = dg.AssetKey(["retention_plan"])
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01")
    store = IntermediateIOManager(base_dir=str(tmp_path), keep_days=2)
    value = {"rows": list(range(5))}
    with dg.build_output_context(asset_key=key, partition_key="2026-03-01", run_id="r1", step_key="s") as out:
        store.handle_output(out, value)
    upstream = dg.build_output_context(asset_key=key, partition_key="2026-03-01", run_id="r1", step_key="s")
    context = dg.build_input_context(
        asset_key=key, partition_key="2026-03-01", asset_partitions_def=partitions, upstream_output=upstream
    )
    assert store.load_input(context) is value
    elsewhere = IntermediateIOManager(base_dir=str(tmp_path), keep_days=2)
    assert elsewhere.load_input(context) == value and elsewhere.load_input(context) is not value
    missing = dg.build_input_context(
        asset_key=key, partition_key="2026-02-01", asset_partitions_def=partitions, upstream_output=upstream
    )
    with pytest.raises(FileNotFoundError, match=r"retention_plan for 2026-02-01 .* kept 2 days"):
        elsewhere.load_input(missing)

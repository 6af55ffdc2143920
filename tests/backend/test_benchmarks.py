"""The benchmarks still run: each at a tiny size, as `make bench` would run it, printing its figures. No
timing is asserted (figures are for people); a benchmark that no longer runs is a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_anonymizer_benchmark_prints_a_rate_per_anonymizer() -> None:
    out = run("anonymizer_benchmark.py", "--values", "200")
    assert "surrogate_email" in out and "scrub_text" in out


def test_the_generator_benchmark_writes_an_estate_and_prints_its_speed(tmp_path: Path) -> None:
    out = run("generate_estate.py", "--people", "30", "--out-dir", str(tmp_path), "--quiet")
    assert "rows per second" in out
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["elearning.db", "enrolment.db", "newsletter.db"]


@pytest.mark.servers
def test_the_apply_benchmark_compares_engine_and_baseline_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    out = run("apply_benchmark.py", "--sizes", "300", "--repeat", "1", "--folder", str(tmp_path), cwd=tmp_path)
    assert "sqlite" in out.lower() and "postgresql" in out.lower()
    assert "eng/set" in out and "eng/row" in out, out  # both baselines, each compared with the engine


def test_the_daily_run_benchmark_prints_time_memory_and_storage_per_executor() -> None:
    out = run("daily_run_benchmark.py", "--people", "100", "--executors", "in_process")
    (line,) = [row for row in out.splitlines() if row.startswith("in_process")]
    seconds, peak, home = (float(cell) for cell in line.split()[1:])
    assert seconds > 0 and peak > 0 and home > 0, out  # a run that did nothing would leave no Dagster home


@pytest.mark.servers
def test_the_erasure_benchmark_compares_the_index_with_a_whole_read(tmp_path: Path) -> None:
    out = run("erasure_benchmark.py", "--sizes", "2000", "--folder", str(tmp_path), cwd=tmp_path)
    lines = {row.split()[0]: row.split()[1:] for row in out.splitlines()[1:]}
    assert set(lines) == {"sqlite", "postgresql"}, out
    for cells in lines.values():
        by_index_rows, whole_rows = int(cells[4]), int(cells[7])
        assert by_index_rows > 0 and whole_rows > 0, out  # each erasure changed the person's rows


def test_the_dagster_overhead_benchmark_compares_the_job_with_its_steps_day_after_day() -> None:
    out = run("dagster_overhead_benchmark.py", "--people", "60", "--days", "2", "--direct-days", "1")
    days = [row.split() for row in out.splitlines() if row.strip().startswith("2026-")]
    assert len(days) == 2, out
    first, second = days
    assert len(first) == 9 and len(second) == 5, out  # the direct figures on the first day only
    assert all(float(cell) > 0 for cell in first[1:]), out
    assert float(second[-2]) > float(first[-2]), out  # the Dagster home holds one more run
    assert float(first[-1]) > 0, out  # the day's outputs are in the intermediate store

"""The daily run end to end through `retention run`, with each executor: one process, or one process per step
(the three sources' snapshots, checks and applies side by side). Prints wall time, the peak memory of the
largest process, and the Dagster home's size after the run.

    python benchmarks/daily_run_benchmark.py --people 20000
    python benchmarks/daily_run_benchmark.py --people 200000 --executors multiprocess

Each executor gets its own copy of one generated estate (SQLite files, a new control database and Dagster
home), so the runs do the same work. The command's output is kept out of the figures' way; a failed run stops
the benchmark with its output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

from estates import copied_estate_env, folder_size, measured_run

from retention.config.settings import EXECUTORS
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES


def run_once(estate: Path, work: Path, executor: str, day: dt.date) -> tuple[float, int, int]:
    """Seconds, peak resident kilobytes of the largest child process, and the Dagster home's bytes."""
    copy = work / executor
    shutil.copytree(estate, copy / "estate")
    env = copied_estate_env(copy, executor=executor)
    command = [sys.executable, "-m", "cli", "run", "--as-of", day.isoformat(), "--confirm-large-plan"]
    seconds, peak = measured_run(command, env, f"the {executor} run")
    return seconds, peak, folder_size(copy / "var" / "dagster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000, help="size of the demo crowd (default 20000)")
    parser.add_argument("--executors", nargs="+", choices=EXECUTORS, default=list(EXECUTORS))
    args = parser.parse_args(argv)
    day = dt.date(2026, 3, 1)
    work = Path(tempfile.mkdtemp(prefix="retention-daily-bench-"))
    try:
        estate = work / "estate"
        estate.mkdir()
        urls = {s: f"sqlite:///{estate / f'{s}.db'}" for s in DEMO_SOURCES}
        counts = generate_demo_estate(urls, people=args.people, seed=7, anchor=day)
        rows = sum(n for tables in counts.values() for n in tables.values())
        print("command: python benchmarks/daily_run_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv))
        print(f"estate: {args.people:,} people, {rows:,} rows in {len(DEMO_SOURCES)} SQLite databases")
        print(f"cores: {os.cpu_count()}; peak MB: the largest single process of the run")
        print(f"{'executor':<14}{'seconds':>10}{'peak MB':>10}{'dagster home MB':>18}")
        for executor in args.executors:
            seconds, peak_kb, home = run_once(estate, work, executor, day)
            print(f"{executor:<14}{seconds:>10.1f}{peak_kb / 1024:>10.0f}{home / 1e6:>18.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

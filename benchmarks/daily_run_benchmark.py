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
import base64
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retention.config.settings import EXECUTORS
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES

ROOT = Path(__file__).resolve().parents[1]
SECRET = base64.b64encode(b"daily run benchmark key, not secret").decode()
MEASURED = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)
"""Runs a command and prints the peak resident kilobytes of the largest process it started (its own children
included), on stderr's last line: measured apart for each run, since this process's count only grows."""


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_once(estate: Path, work: Path, executor: str, day: dt.date) -> tuple[float, int, int]:
    """Seconds, peak resident kilobytes of the largest child process, and the Dagster home's bytes."""
    copy = work / executor
    shutil.copytree(estate, copy / "estate")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env |= {f"RETENTION_{s.upper()}_URL": f"sqlite:///{copy / 'estate' / f'{s}.db'}" for s in DEMO_SOURCES}
    env |= {
        "RETENTION_CONTROL_URL": f"sqlite:///{copy / 'control.db'}",
        "RETENTION_KEY": f"k1:{SECRET}",
        "RETENTION_VAR": str(copy / "var"),
        "DAGSTER_HOME": str(copy / "var" / "dagster"),
        "RETENTION_EXECUTOR": executor,
    }
    command = [sys.executable, "-m", "cli", "run", "--as-of", day.isoformat(), "--confirm-large-plan"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the {executor} run failed:\n{done.stdout}{done.stderr}")
    peak = int(done.stderr.strip().splitlines()[-1])
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

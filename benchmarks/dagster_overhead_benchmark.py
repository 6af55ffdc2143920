"""What Dagster costs on top of the work: the daily job through `retention run`, and the same steps called
directly (the functions its assets call, in one process, nothing stored between them), on copies of one
estate, day after day. Prints each day's time and peak memory both ways with their ratio, and the size of the
Dagster home and of the intermediate store after each day (between runs the stored outputs are made a day
older, as if the runs were a day apart, so that their keeping time acts).

    python benchmarks/dagster_overhead_benchmark.py --people 60000 --days 10

At 60,000 people the demo estate holds about a million rows. The direct steps run for the first
`--direct-days` days only (default 3): their footprint outside the databases is the reports alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from estates import copied_estate_env, folder_size, measured_run

from retention.apply.applier import DEFAULT_BATCH_ROWS, SourceApplier
from retention.apply.heap import frozen_heap
from retention.apply.verification import verify
from retention.config import settings
from retention.config.keys import load_keyring
from retention.config.loading import load_config
from retention.config.requests import load_request_settings
from retention.daily.flow import compute_plan
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from retention.quality.run import check_schema, check_snapshot
from retention.quality.suites import reflect_columns
from retention.reporting.model import gather_report
from retention.reporting.render import write_report
from retention.requests.access import purge_exports
from retention.requests.suppression import load_suppressions
from retention.storage.engines import Estate
from retention.storage.preflight import preflight

FIRST_DAY = dt.date(2026, 3, 1)


def direct_day(day: dt.date) -> None:
    """The daily job's steps in the job's order, without Dagster: what `retention run` would do if it called
    the engine's functions itself, its check of the configuration and databases first (the suppression step
    has an empty list, as in the Dagster run)."""
    found = preflight(settings.catalog_path(), settings.policy_path())
    if found.problems:
        raise SystemExit(str(found.problems))
    config = load_config(settings.catalog_path(), settings.policy_path())
    keyring, _ = load_keyring(demo=False)
    estate = Estate.connect(config.catalog)
    control = estate.control
    assert control is not None
    run_name = f"{day} direct"
    result = compute_plan(config, estate, keyring, day)
    for source, engine in estate.sources.items():
        tables = list(config.catalog.sources[source].tables)
        check_schema(config, source, reflect_columns(engine, tables), run_name=run_name)
        check_snapshot(config, source, result.snapshots[source], engine, day, run_name=run_name, control=control)
    for source, engine in estate.sources.items():
        applier = SourceApplier(
            config, source, engine, control, keyring, run_id=f"direct-{day}", as_of=day, batch_rows=DEFAULT_BATCH_ROWS
        )
        with frozen_heap():
            applied = applier.apply(result.plan)
        problems = verify(applier, applied)
        if problems:
            raise SystemExit(f"{source}: {problems}")
    assert not load_suppressions(control).subjects
    purge_exports(load_request_settings(config))
    report = gather_report(
        config, control, day, plan=result.plan, tagged=result.tagged, checks=[], checks_note="direct", notes=[]
    )
    write_report(report, settings.reports_dir())
    estate.dispose()


def a_day_passes(folder: Path) -> None:
    """Make every stored output a day older, as if the runs were a day apart, so that the store's keeping time
    (RETENTION_OUTPUT_KEEP_DAYS) acts as on a machine that runs the job nightly."""
    for path in folder.rglob("*"):
        stat = path.stat()
        os.utime(path, (stat.st_atime - 86_400, stat.st_mtime - 86_400))


def run_direct(work: Path, day: dt.date) -> tuple[float, int]:
    command = [sys.executable, __file__, "--direct", day.isoformat()]
    return measured_run(command, copied_estate_env(work / "direct"), f"the direct run of {day}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=60_000, help="size of the demo crowd (default 60000)")
    parser.add_argument("--days", type=int, default=10, help="daily runs through Dagster (default 10)")
    parser.add_argument("--direct-days", type=int, default=3, help="of which also run directly (default 3)")
    parser.add_argument("--direct", metavar="DAY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.direct:
        direct_day(dt.date.fromisoformat(args.direct))
        return 0
    work = Path(tempfile.mkdtemp(prefix="retention-overhead-bench-"))
    try:
        estate = work / "estate"
        estate.mkdir()
        urls = {s: f"sqlite:///{estate / f'{s}.db'}" for s in DEMO_SOURCES}
        counts = generate_demo_estate(urls, people=args.people, seed=7, anchor=FIRST_DAY)
        rows = sum(n for tables in counts.values() for n in tables.values())
        for name in ("dagster", "direct"):
            shutil.copytree(estate, work / name / "estate")
        print(
            "command: python benchmarks/dagster_overhead_benchmark.py "
            + " ".join(sys.argv[1:] if argv is None else argv)
        )
        print(f"estate: {args.people:,} people, {rows:,} rows in {len(DEMO_SOURCES)} SQLite databases")
        print(f"cores: {os.cpu_count()}; executor in_process; peak MB: resident memory of the run's process")
        header = ("day", "dagster s", "direct s", "ratio", "dagster MB", "direct MB", "ratio", "home MB", "store MB")
        print("".join(f"{h:>12}" for h in header))
        ratios: list[tuple[float, float]] = []
        for n in range(args.days):
            day = FIRST_DAY + dt.timedelta(days=n)
            direct = n < args.direct_days
            if direct and n % 2:  # every other day the direct steps go first, so neither order favours one
                d_seconds, d_peak = run_direct(work, day)
            seconds, peak = measured_run(
                [sys.executable, "-m", "cli", "run", "--as-of", day.isoformat(), "--confirm-large-plan"],
                copied_estate_env(work / "dagster", executor="in_process"),
                f"the Dagster run of {day}",
            )
            var = work / "dagster" / "var"
            home, store = folder_size(var / "dagster"), folder_size(var / "intermediate")
            a_day_passes(var / "intermediate")
            figures = [
                f"{seconds:.1f}",
                "",
                "",
                f"{peak / 1024:.0f}",
                "",
                "",
                f"{home / 1e6:.1f}",
                f"{store / 1e6:.1f}",
            ]
            if direct:
                if not n % 2:
                    d_seconds, d_peak = run_direct(work, day)
                ratios.append((seconds / d_seconds, peak / d_peak))
                figures[1:3] = [f"{d_seconds:.1f}", f"{seconds / d_seconds:.2f}"]
                figures[4:6] = [f"{d_peak / 1024:.0f}", f"{peak / d_peak:.2f}"]
            print(f"{day.isoformat():>12}" + "".join(f"{f:>12}" for f in figures), flush=True)
        if ratios:
            time_ratio = statistics.median(r[0] for r in ratios)
            memory_ratio = statistics.median(r[1] for r in ratios)
            print(f"median Dagster / direct over {len(ratios)} days: time {time_ratio:.2f}, memory {memory_ratio:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`retention`: the command line for operators, support staff and the demo.

Commands that run the daily job import the Dagster code location lazily; the rest of the core stays free of
Dagster.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from cli.display import live_progress
from cli.requests import replay_command, request_app
from cli.support import config_or_exit, console, err, fail
from retention.config import settings
from retention.config.keys import KeyError_, create_key_file, load_keyring, rotate_key_file
from retention.config.loading import EstateConfig, read_config
from retention.config.problems import ConfigError
from retention.daily.planning import Plan
from retention.storage.engines import Estate, EstateError, is_demo

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False)


keys_app = typer.Typer(no_args_is_help=True, help="Create and rotate the secret keys.")
app.add_typer(keys_app, name="keys")
app.add_typer(request_app, name="request")
app.command("replay")(replay_command)


AsOf = Annotated[
    dt.datetime | None,
    typer.Option("--as-of", formats=["%Y-%m-%d"], help="the day to act for (default: today), YYYY-MM-DD"),
]


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


EARLIEST_DAY = dt.date(2000, 1, 1)
YEARS_AHEAD = 100


def _day(as_of: dt.datetime | None, option: str = "--as-of") -> dt.date:
    """The day asked for (today by default), within the years a plan can be computed for."""
    today = dt.date.today()
    day = as_of.date() if as_of else today
    latest = dt.date(today.year + YEARS_AHEAD, 12, 31)
    if not EARLIEST_DAY <= day <= latest:
        raise fail(
            f"{option} {day} is outside the days the engine plans for; give a day from {EARLIEST_DAY} to {latest}"
        )
    return day


def _keyring_or_exit(config: EstateConfig) -> None:
    """A missing key stops the command here, with the engine's message, not inside a Dagster run."""
    try:
        load_keyring(demo=is_demo(config.catalog))
    except KeyError_ as exc:
        raise fail(str(exc)) from None


def _partition(day: dt.date, config: EstateConfig, option: str = "--as-of") -> dt.date:
    """A day the daily job has a partition for: a run of another day could not be recorded in Dagster."""
    from pipelines.partitions import daily_partitions

    partitions = daily_partitions(config.policy)
    if not partitions.has_partition_key(day.isoformat()):
        first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
        raise fail(
            f"{option} {day}: the daily job has a partition for each day from {first} (first_partition_day in "
            f"{config.policy_file}) to {last}; give a day in that range"
        )
    return day


@app.command("check-config")
def check_config() -> None:
    """Validate the catalog, the policy and the request settings, and compare them with the real databases:
    every problem in one pass (the same pass every other command runs before it writes)."""
    from retention.storage.preflight import preflight

    catalog_path, policy_path = settings.catalog_path(), settings.policy_path()
    key_id = None
    catalog, _, _ = read_config(catalog_path, policy_path)
    if catalog is not None:
        try:
            key_id = load_keyring(demo=is_demo(catalog))[0].active_id
        except KeyError_ as exc:
            raise fail(str(exc)) from None
    found = preflight(catalog_path, policy_path, key_id=key_id)
    for warning in found.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    try:
        config = found.valid()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[green]ok[/]: {catalog_path} and {policy_path} agree with each other and with "
        f"{len(config.catalog.sources)} databases ({len(config.catalog.tables())} tables, "
        f"{len(config.policy.purposes)} purposes); {len(found.warnings)} warnings"
    )


@app.command("demo-estate")
def demo_estate(
    people: Annotated[int, typer.Option(help="how many people the estate holds")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed; the same seed and size give the same estate")] = 7,
    anchor: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="the estate's 'today' (default: today)")
    ] = None,
    replace: Annotated[bool, typer.Option(help="drop and recreate existing demo tables")] = False,
) -> None:
    """Create the demo estate (three databases of a Danish course provider) at the catalog's URLs."""
    from retention.demo.generator import generate_demo_estate

    config = config_or_exit(databases=False)
    urls: dict[str, str] = {}
    for name, src in config.catalog.sources.items():
        url = src.url()
        if not url:
            raise fail(f"source {name!r}: no database URL; set {src.url_env} to a SQLAlchemy URL")
        urls[name] = url
    for url in urls.values():
        if url.startswith("sqlite:///"):
            settings.private_dir(Path(url.removeprefix("sqlite:///")).parent)
    started = time.perf_counter()
    with console.status("generating the demo estate") as status:
        try:
            counts = generate_demo_estate(
                urls,
                people=people,
                seed=seed,
                anchor=anchor.date() if anchor else None,
                replace=replace,
                progress=lambda s, t, n: status.update(f"generating {s}.{t}: {n:,} rows"),
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
    seconds = time.perf_counter() - started
    total = sum(n for tables in counts.values() for n in tables.values())
    console.print(f"demo estate: {people:,} people, {total:,} rows in {seconds:.1f} s ({total / seconds:,.0f} rows/s)")


def _demo_estate_exists(config: EstateConfig) -> bool:
    try:
        estate = Estate.connect(config.catalog)
    except EstateError:
        return False
    try:
        return all(
            set(config.catalog.sources[s].tables) <= set(sa.inspect(e).get_table_names())
            for s, e in estate.sources.items()
        )
    finally:
        estate.dispose()


@app.command()
def plan(as_of: AsOf = None, format: Annotated[Format, typer.Option("--format")] = Format.TABLE) -> None:
    """Print what is due on a day, by source, table, action and purpose, without changing anything."""
    from retention.daily.flow import compute_plan
    from retention.reporting.plan import plan_json, plan_rich_table

    day = _day(as_of)
    config = config_or_exit()
    try:
        keyring, notice = load_keyring(demo=is_demo(config.catalog))
        estate = Estate.connect(config.catalog)
    except (KeyError_, EstateError) as exc:
        raise fail(str(exc)) from None
    if notice:
        err.print(f"[yellow]{notice}[/]")
    try:
        with err.status("planning") as status:
            result = compute_plan(config, estate, keyring, day, progress=lambda m: status.update(m))
    finally:
        estate.dispose()
    if format is Format.JSON:
        sys.stdout.write(plan_json(result.plan) + "\n")
    else:
        print_whole(plan_rich_table(result.plan))
        _print_holds(result.plan)


def print_whole(table: Table) -> None:
    """Print a table at least as wide as its content: without a terminal (cron, CI) Rich assumes 80 columns
    and would cut the names of tables and purposes."""
    needed = Measurement.get(console, console.options.update(width=10_000), table).maximum
    if needed <= console.width:
        console.print(table)
        return
    wide = Console(file=console.file, width=needed, force_terminal=console.is_terminal, no_color=console.no_color)
    wide.print(table)


def _print_holds(plan: Plan) -> None:
    held = {f"{s}.{t}": h for (s, t), h in plan.held.items() if h}
    undated = {f"{s}.{t}": u for (s, t), u in plan.undated.items() if u}
    for table, reasons in held.items():
        console.print(f"kept in {table}: " + ", ".join(f"{n} held ({why})" for why, n in reasons.items()))
    for table, purposes in undated.items():
        console.print(
            f"kept in {table} without a usable date: " + ", ".join(f"{n} for {p}" for p, n in purposes.items())
        )


@app.command()
def run(
    as_of: AsOf = None,
    confirm_large_plan: Annotated[
        bool, typer.Option(help="confirm, for this run, a plan larger than the policy's guard allows")
    ] = False,
) -> None:
    """Run the daily job for a day through Dagster (in-process, on the local instance)."""
    config = config_or_exit()
    _keyring_or_exit(config)
    _run_daily(_partition(_day(as_of), config), confirm_large_plan)


@app.command()
def backfill(
    first: Annotated[dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day, YYYY-MM-DD")],
    last: Annotated[dt.datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last day, YYYY-MM-DD")],
    apply: Annotated[bool, typer.Option(help="run the whole daily job, not only snapshot to plan")] = False,
    confirm_large_plan: Annotated[bool, typer.Option(help="confirm plans larger than the guard allows")] = False,
) -> None:
    """Materialise each day's partition in order: by default up to the plan (a dry run per day)."""
    from pipelines.runner import run_daily

    config = config_or_exit()
    _keyring_or_exit(config)
    day, end = _partition(_day(first, "--from"), config, "--from"), _partition(_day(last, "--to"), config, "--to")
    if end < day:
        raise fail(f"--to {end} is before --from {day}")
    _refuse_if_daily_under_way()
    while day <= end:
        with live_progress(console, f"{'running' if apply else 'planning'} {day}") as progress:
            result = run_daily(day, confirm_large_plan=confirm_large_plan, plan_only=not apply, progress=progress)
        mats = {
            e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
        planned = mats.get("retention_plan", {}).get("planned_actions")
        status = "[green]ok[/]" if result.success else "[bold red]failed[/]"
        console.print(f"{day}: {status}, {planned.value if planned else 0} planned actions")
        if not result.success:
            raise typer.Exit(code=1)
        day += dt.timedelta(days=1)


@app.command()
def report(as_of: AsOf = None) -> None:
    """Write the compliance report of a day (HTML and Markdown, under var/reports) and print where it is."""
    from pipelines.runner import report_for_day

    config_or_exit()
    day = _day(as_of)
    try:
        files, notes = report_for_day(day)
    except (KeyError_, EstateError) as exc:
        raise fail(str(exc)) from None
    for note in notes:
        console.print(f"[dim]{note}[/]")
    console.print(f"compliance report for {day}: {files.html} (Markdown: {files.markdown})")


def _refuse_if_daily_under_way() -> None:
    from pipelines.runner import daily_run_under_way

    holder = daily_run_under_way()
    if holder:
        raise fail(f"another daily run is under way: {holder}. Nothing was started; run this once it has ended.")


def _run_daily(day: dt.date, confirm_large_plan: bool) -> None:
    from pipelines.runner import run_daily
    from pipelines.summary import print_run_summary

    _refuse_if_daily_under_way()
    started = time.perf_counter()
    with live_progress(console, f"daily run for {day}") as progress:
        result = run_daily(day, confirm_large_plan=confirm_large_plan, progress=progress)
    print_run_summary(console, result, day, time.perf_counter() - started)
    if not result.success:
        raise typer.Exit(code=1)


@app.command()
def demo(
    as_of: AsOf = None,
) -> None:
    """Set up the demo (key, estate) if missing and run the daily job for today."""
    config = config_or_exit(databases=False)
    if not is_demo(config.catalog):
        raise fail("`retention demo` only runs on the demo estate; unset the RETENTION_*_URL variables")
    try:
        _, notice = load_keyring(demo=True)
    except KeyError_ as exc:
        raise fail(str(exc)) from None
    if notice:
        console.print(f"[yellow]{notice}[/]")
    if not _demo_estate_exists(config):
        demo_estate(people=2000, seed=7, anchor=None, replace=False)
    else:
        console.print(f"demo estate found under {settings.var_dir()}/estate (remove that folder to start afresh)")
    console.print(
        "[dim]the demo confirms the guard: its first run clears years of backlog at once, which a real "
        "first run would confirm explicitly[/]"
    )
    _run_daily(_partition(_day(as_of), config), confirm_large_plan=True)


@keys_app.command("init")
def keys_init(file: Annotated[Path, typer.Option(help="where to write the new key file")]) -> None:
    """Create a key file with one random key (owner-only permissions)."""
    try:
        create_key_file(file)
    except KeyError_ as exc:
        raise fail(str(exc)) from None
    console.print(f"created {file} with key k1; set RETENTION_KEY_FILE={file}")


@keys_app.command("rotate")
def keys_rotate(
    file: Annotated[Path | None, typer.Option(help="key file (default: RETENTION_KEY_FILE or the demo's)")] = None,
) -> None:
    """Add a new key and make it the one new pseudonyms use; subject keys stay as they are."""
    path = file or Path(os.environ.get("RETENTION_KEY_FILE") or settings.default_key_file())
    if not path.exists():
        raise fail(f"{path}: key file not found; create one with `retention keys init --file {path}`")
    try:
        new_id = rotate_key_file(path)
    except KeyError_ as exc:
        raise fail(str(exc)) from None
    console.print(f"{path}: new pseudonyms now use key {new_id}")


def main() -> None:
    """The `retention` command. An error the engine did not foresee is one line naming where its details
    were logged: the traceback goes to a private file under var/logs, not to the terminal or a ticket."""
    try:
        app(prog_name="retention")
    except KeyboardInterrupt:
        err.print("interrupted; every batch applied so far is complete, the next run recovers the rest")
        sys.exit(130)
    except Exception as exc:  # the guard for what nothing else foresaw
        log = _crash_log(exc)
        raise SystemExit(fail(f"unexpected {type(exc).__name__}; the details are in {log}").exit_code) from None


def _crash_log(exc: Exception) -> Path:
    """Where the error happened: the command's words, each frame and the exception's type. Option values and
    the exception's message are left out: either may hold an identifier or a value from the estate."""
    import traceback

    folder = settings.private_dir(settings.var_dir() / "logs")
    path = folder / f"retention-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}.log"
    words = [w for w in itertools.takewhile(lambda w: not w.startswith("-"), sys.argv[1:])]
    frames: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        frames.append(f"{type(current).__module__}.{type(current).__qualname__}\n")
        frames += traceback.format_list(traceback.extract_tb(current.__traceback__))
        current = current.__cause__ or current.__context__
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
        out.write(f"retention {' '.join(words)}\n" + "".join(frames))
    return path

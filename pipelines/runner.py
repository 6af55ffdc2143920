"""In-process runs on the local Dagster instance, for the CLI: the daily job, one subject request, a day's report.

The code location is imported inside the functions: it loads the configuration, which the CLI checks first.
"""

import datetime as dt
import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import dagster as dg
import sqlalchemy as sa

from assets.planning import RETENTION_PLAN, TAGGED_RECORDS
from assets.report import check_rows, write_day_report
from pipelines.coordination import run_ended
from pipelines.partitions import PARTITION_TAG
from pipelines.requests import SUBJECT_REQUEST_JOB, TAG_REQUEST, run_config_for
from retention.config import settings
from retention.config.loading import EstateConfig
from retention.config.settings import private_dir, var_dir
from retention.daily.planning import Plan
from retention.daily.tagging import Tagged
from retention.reporting.model import ReportFiles
from retention.storage.leases import DAILY, held, release
from retention.storage.schema import ensure_schema
from sensors.alerts import alert_failed_run

DAGSTER_YAML = """# Local Dagster instance of the retention engine (SQLite storage under this folder).
telemetry:
  enabled: false
# Runs the daemon launches (schedule, sensors, UI) wait in the queue: one daily run at a time.
run_queue:
  max_concurrent_runs: 4
  tag_concurrency_limits:
    - key: retention/job
      value: daily
      limit: 1
# A run that never starts is marked failed; a run whose process was killed is marked failed by the run that
# takes over its leases (the request sensor, the next daily run), since this launcher cannot watch processes.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 60
"""

OLD_DAGSTER_YAMLS = frozenset(
    {
        """# Local Dagster instance of the retention engine (SQLite storage under this folder).
telemetry:
  enabled: false
"""
    }
)
"""What earlier versions wrote: replaced by `DAGSTER_YAML`; a file anyone edited is left alone."""


def local_instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME, defaulting to var/dagster, the one `make ui` opens too."""
    home = Path(os.environ.get("DAGSTER_HOME") or var_dir() / "dagster").resolve()
    private_dir(home)
    config_file = home / "dagster.yaml"
    if not config_file.exists() or config_file.read_text() in OLD_DAGSTER_YAMLS:
        config_file.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Dagster's SQLite storages race when two processes create them at once
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)
        instance.schedule_storage  # noqa: B018 -- created on first use
        return instance


PLAN_ONLY_GROUPS = ("snapshot", "plan")


def run_daily(
    as_of: dt.date, *, confirm_large_plan: bool = False, log_level: str = "CRITICAL", plan_only: bool = False
) -> dg.ExecuteInProcessResult:
    """One day of the daily job; `plan_only` stops after the plan (a dry run, e.g. for backfills). Dagster's
    console log stays quiet: the run summary prints the engine's own messages, and the whole event log is in
    the instance, for the UI."""
    from pipelines.definitions import DAILY_JOB, defs

    job = defs.resolve_job_def(DAILY_JOB)
    run_config = {
        "ops": {"retention_plan": {"config": {"confirm_large_plan": confirm_large_plan}}},
        "loggers": {"console": {"config": {"log_level": log_level}}, "progress": {}},
    }
    with local_instance() as instance:
        selection = None
        if plan_only:
            graph = defs.resolve_asset_graph()
            selection = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name in PLAN_ONLY_GROUPS]
        result = job.execute_in_process(
            partition_key=as_of.isoformat(),
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
            asset_selection=selection,
        )
        if not result.success:
            # no daemon watches an in-process run, so record the failure as the run-failure sensor would
            run = instance.get_run_by_id(result.run_id)
            if run is not None:
                alert_failed_run(instance, run, str(settings.catalog_path()), str(settings.policy_path()))
    with _control() as control:
        release(control, result.run_id)  # the run has ended: what it held is free now, not after it expires
    return result


def daily_run_under_way() -> str | None:
    """The live daily run holding the daily lease, described, or None: a second run would stop at once."""
    with _control() as control, local_instance() as instance:
        now = dt.datetime.now(dt.UTC)
        for lease in held(control, [DAILY]):
            if lease.expires_at > now and not run_ended(instance, lease.owner):
                return lease.describe(now)
    return None


@contextmanager
def _control() -> Iterator[sa.Engine]:
    from retention.config.loading import load_config
    from retention.storage.engines import control_engine

    url = load_config(settings.catalog_path(), settings.policy_path()).catalog.control_url()
    if not url:
        raise RuntimeError("no control database URL; `retention check-config` says which variable to set")
    engine = control_engine(url)
    try:
        ensure_schema(engine)
        yield engine
    finally:
        engine.dispose()


def execute_request(request_id: int, tags: Mapping[str, str] | None = None) -> dg.ExecuteInProcessResult:
    """Run the job for one request now, in-process on the local instance (`retention request ... --now`)."""
    from pipelines.definitions import defs

    job = defs.resolve_job_def(SUBJECT_REQUEST_JOB)
    run_config = {**run_config_for(request_id), "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with local_instance() as instance:
        return job.execute_in_process(
            run_config=run_config,
            instance=instance,
            tags={TAG_REQUEST: str(request_id), **(tags or {})},
            raise_on_error=False,
        )


def report_for_day(day: dt.date) -> tuple[ReportFiles, list[str]]:
    """The report of a day from what its latest run stored; computes plan and deadlines afresh if none did.

    Returns the files and notes on where the numbers came from.
    """
    from pipelines.definitions import DAILY_JOB, defs
    from retention.config.loading import load_config
    from retention.storage.engines import control_engine

    config = load_config(settings.catalog_path(), settings.policy_path())
    partition = day.isoformat()
    control_url = config.catalog.control_url()
    if not control_url:
        raise RuntimeError(f"no control database URL; set {config.catalog.control_url_env}")
    control = control_engine(control_url)
    notes: list[str] = []
    try:
        with local_instance() as instance:
            runs = instance.get_runs(
                filters=dg.RunsFilter(job_name=DAILY_JOB, tags={PARTITION_TAG: partition}), limit=1
            )
            run = runs[0] if runs else None
            checks = check_rows(instance, run.run_id) if run is not None else []
            checks_note = (
                f"Results of run {run.run_id} ({run.status.value.lower()})."
                if run is not None
                else "The daily job has not run for this day on this Dagster instance."
            )
            plan: Plan | None
            tagged: Tagged | None
            try:
                # Dagster types a loaded asset value as object; these are the assets' own output types
                plan = cast(Plan, defs.load_asset_value(RETENTION_PLAN, partition_key=partition, instance=instance))
                tagged = cast(Tagged, defs.load_asset_value(TAGGED_RECORDS, partition_key=partition, instance=instance))
                notes.append("Held rows and expiries are those of the day's stored plan and tagged records.")
            except (FileNotFoundError, dg.DagsterError):
                plan, tagged, note = _compute_now(config, day)
                notes.append(note)
        _, files = write_day_report(
            config, control, day, plan=plan, tagged=tagged, checks=checks, checks_note=checks_note, notes=notes
        )
    finally:
        control.dispose()
    return files, notes


def _compute_now(config: EstateConfig, day: dt.date) -> tuple[Plan | None, Tagged | None, str]:
    """Plan and deadlines from the current data; none when the estate cannot be read (the report still says
    what the ledger and the alerts know, which is what matters on the day a run failed)."""
    from retention.config.keys import load_keyring
    from retention.daily.flow import compute_plan
    from retention.storage.engines import Estate, is_demo

    keyring, _ = load_keyring(demo=is_demo(config.catalog))
    estate = Estate.connect(config.catalog)
    try:
        result = compute_plan(config, estate, keyring, day)
    except Exception as exc:  # the report must still be written on the day the estate cannot be read
        return (
            None,
            None,
            f"The daily job stored no plan for this day and none could be computed now ({type(exc).__name__}); "
            "held rows and expiries are not shown.",
        )
    finally:
        estate.dispose()
    note = "The daily job stored no plan for this day; held rows and expiries were computed now from the current data."
    return result.plan, result.tagged, note

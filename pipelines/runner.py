"""In-process runs on the local Dagster instance, for the CLI: the daily job, one subject request, a day's report.

The code location is imported inside the functions: it loads the configuration, which the CLI checks first.
"""

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import cast

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load_target import WorkspaceFileTarget

from assets.planning import RETENTION_PLAN, TAGGED_RECORDS
from assets.report import check_rows, write_day_report
from pipelines.coordination import run_ended
from pipelines.instance import local_instance
from pipelines.partitions import PARTITION_TAG
from pipelines.progress import Listener, watching
from pipelines.requests import SUBJECT_REQUEST_JOB, TAG_REQUEST, run_config_for
from retention.config import settings
from retention.config.loading import EstateConfig
from retention.daily.planning import Plan
from retention.daily.tagging import Tagged
from retention.reporting.model import ReportFiles
from retention.storage.leases import DAILY, held, release
from retention.storage.schema import ensure_schema
from sensors.alerts import alert_failed_run

WORKSPACE_FILE = Path(__file__).resolve().parents[1] / "workspace.yaml"
"""The code location `make ui` and the daemon load: CLI runs are recorded as runs of its jobs."""


def _job(job_name: str) -> tuple[ReconstructableJob, RemoteJobOrigin]:
    """The job as the step processes rebuild it, and its origin in the workspace's code location, so that a
    run started here shows on the job's page and the timeline, and can be re-executed from the UI. Dagster's
    public `execute_job` records no such origin, hence its internals here (Dagster is pinned;
    tests/e2e/test_ui_backfill.py reads the job's page to catch a change)."""
    (location,) = WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)]).create_origins()
    repository = RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME)
    recon = ReconstructableRepository.for_module(
        "pipelines.definitions", "defs", working_directory=str(WORKSPACE_FILE.parent)
    ).get_reconstructable_job(job_name)
    return recon, repository.get_job_origin(job_name)


def execute(
    job_name: str,
    *,
    run_config: Mapping[str, object],
    tags: Mapping[str, str],
    progress: Listener | None = None,
) -> dg.JobExecutionResult:
    """Run a job of the code location now, in this process, as a run of that job on the local instance;
    `progress` hears of its steps from the event log while it runs."""
    from pipelines.definitions import defs

    recon, origin = _job(job_name)
    with local_instance() as instance:
        run = instance.create_run_for_job(
            job_def=defs.resolve_job_def(job_name),
            run_config=run_config,
            tags=tags,
            job_code_origin=recon.get_python_origin(),
            remote_job_origin=origin,
        )
        with watching(instance, run.run_id, progress) if progress else nullcontext():
            result = execute_run(recon, run, instance)
        if not result.success:
            # no daemon watches a run started here, so record the failure as the run-failure sensor would
            ended = instance.get_run_by_id(run.run_id)
            if ended is not None and job_name != SUBJECT_REQUEST_JOB:
                alert_failed_run(instance, ended, str(settings.catalog_path()), str(settings.policy_path()))
    return result


def run_daily(
    as_of: dt.date,
    *,
    confirm_large_plan: bool = False,
    log_level: str = "CRITICAL",
    plan_only: bool = False,
    progress: Listener | None = None,
) -> dg.JobExecutionResult:
    """One day of the daily job, or of the plan-only job (a dry run, e.g. for backfills). Dagster's console
    log stays quiet: the run summary prints the engine's own messages, and the whole event log is in the
    instance, for the UI."""
    from pipelines.definitions import DAILY_JOB, PLAN_JOB

    run_config = {
        "ops": {"retention_plan": {"config": {"confirm_large_plan": confirm_large_plan}}},
        "loggers": {"console": {"config": {"log_level": log_level}}},
    }
    result = execute(
        PLAN_JOB if plan_only else DAILY_JOB,
        run_config=run_config,
        tags={PARTITION_TAG: as_of.isoformat()},
        progress=progress,
    )
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


def execute_request(
    request_id: int, tags: Mapping[str, str] | None = None, progress: Listener | None = None
) -> dg.JobExecutionResult:
    """Run the job for one request now, in-process on the local instance (`retention request ... --now`)."""
    run_config = {**run_config_for(request_id), "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    return execute(
        SUBJECT_REQUEST_JOB,
        run_config=run_config,
        tags={TAG_REQUEST: str(request_id), **(tags or {})},
        progress=progress,
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
            f"No plan of this day is stored and none could be computed now ({type(exc).__name__}); held rows "
            "and expiries are not shown.",
        )
    finally:
        estate.dispose()
    note = (
        "No plan of this day is stored (the daily job did not run the day, or its outputs are older than "
        f"{settings.OUTPUT_KEEP_DAYS_ENV}); held rows and expiries were computed now from the current data."
    )
    return result.plan, result.tagged, note

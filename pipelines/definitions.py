"""The code location that workspace.yaml loads: assets, the daily job, its schedule, resources.

The catalog and policy are loaded at import, so a broken configuration stops the code location from loading
with the same message `retention check-config` gives.
"""

import datetime as dt
import warnings

import dagster as dg

from assets.applying import build_apply_assets
from assets.housekeeping import build_history_asset
from assets.labels import label_source_assets
from assets.planning import build_planning_assets
from assets.quality import build_quality_definitions
from assets.report import build_report_asset
from assets.requests import build_export_purge_asset, build_suppression_asset
from assets.snapshots import build_snapshot_asset
from pipelines.coordination import DAILY_TAG_VALUE, JOB_TAG, PLAN_TAG_VALUE
from pipelines.intermediates import IntermediateIOManager
from pipelines.partitions import MISSING_PARTITIONS, daily_partitions
from pipelines.requests import subject_request_job
from pipelines.resources import EstateResource
from retention.apply.heap import set_aside_loaded_code
from retention.config import settings
from retention.config.loading import load_config
from sensors.alerts import build_alert_sensor
from sensors.requests import build_request_sensor

DAILY_JOB = "daily_retention"
PLAN_JOB = "retention_plan_only"
PLAN_ONLY_GROUPS = ("snapshot", "plan")

EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}
"""By RETENTION_EXECUTOR (`settings.executor_name`): every run of the location, from the CLI, the UI, the
schedule or a backfill, executes its steps the same way."""

# partitioned asset checks are marked preview in this Dagster release; the warning would only add noise
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_definitions(catalog_path: str | None = None, policy_path: str | None = None) -> dg.Definitions:
    catalog_path = catalog_path or str(settings.catalog_path())
    policy_path = policy_path or str(settings.policy_path())
    config = load_config(catalog_path, policy_path)
    partitions = daily_partitions(config.policy)
    sources = list(config.catalog.sources)
    assets = [build_snapshot_asset(config.catalog, s, partitions) for s in sources]
    assets += build_planning_assets(sources, partitions)
    assets += build_apply_assets(sources, partitions)
    assets += build_quality_definitions(sources, partitions)
    assets.append(build_report_asset(sources, partitions))
    assets.append(build_suppression_asset(sources, partitions))
    assets.append(build_export_purge_asset(partitions))
    assets.append(build_history_asset(partitions, [k for a in assets for k in a.keys]))
    assets = label_source_assets(assets, config.catalog)

    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),
        description=(
            "Snapshot, tag, plan, apply and verify for one as-of day: this job changes the databases. A backfill "
            "of several days runs them one at a time, in order, since each day builds on the one before. "
            + MISSING_PARTITIONS
        ),
        tags={JOB_TAG: DAILY_TAG_VALUE},
    )
    plan_job = dg.define_asset_job(
        PLAN_JOB,
        selection=dg.AssetSelection.groups(*PLAN_ONLY_GROUPS),
        description=(
            "Snapshot, subject index, tagged records and the plan for one as-of day, and the snapshots' checks: "
            "a dry run that changes no database, e.g. to backfill what past days would have planned."
        ),
        tags={JOB_TAG: PLAN_TAG_VALUE},
    )

    @dg.schedule(
        cron_schedule="30 0 * * *",
        job=daily_job,
        execution_timezone=config.policy.business_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "At 00:30 business time, the daily job for the day that has just ended, so every deadline of that day "
            "has passed. Stopped until someone turns it on. " + MISSING_PARTITIONS
        ),
    )
    def nightly_retention(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Just after midnight, run the day that has just ended, so every deadline of that day has passed.

        Written by hand, not built with `dg.build_schedule_from_partitioned_job`: that schedule asks for the
        partitions' last key at the tick, and with `end_offset=1` (today's partition exists, for `make demo`)
        that is the day that has just begun, a day whose deadlines have not passed yet.
        """
        local = context.scheduled_execution_time.astimezone(config.policy.timezone)
        day = (local.date() - dt.timedelta(days=1)).isoformat()
        return dg.RunRequest(run_key=day, partition_key=day)

    return dg.Definitions(
        assets=assets,
        jobs=[daily_job, plan_job, subject_request_job],
        schedules=[nightly_retention],
        sensors=[
            build_request_sensor(catalog_path, policy_path),
            build_alert_sensor([daily_job, plan_job], catalog_path, policy_path),
        ],
        resources={
            "estate": EstateResource(catalog_path=catalog_path, policy_path=policy_path),
            "io_manager": IntermediateIOManager(),
        },
        loggers={"console": dg.colored_console_logger},
        executor=EXECUTORS[settings.executor_name()],
    )


defs = build_definitions()
set_aside_loaded_code()

"""The code location that workspace.yaml loads: assets, the daily job, its schedule, resources.

The catalog and policy are loaded at import, so a broken configuration stops the code location from loading
with the same message `retention check-config` gives.
"""

import datetime as dt
import warnings

import dagster as dg

from assets.applying import build_apply_assets
from assets.planning import build_planning_assets
from assets.quality import build_quality_definitions
from assets.report import build_report_asset
from assets.requests import build_export_purge_asset, build_suppression_asset
from assets.snapshots import build_snapshot_asset
from pipelines.coordination import DAILY_TAG_VALUE, JOB_TAG
from pipelines.partitions import daily_partitions
from pipelines.progress import progress_logger
from pipelines.requests import subject_request_job
from pipelines.resources import EstateResource
from retention.config import settings
from retention.config.loading import load_config
from sensors.alerts import build_alert_sensor
from sensors.requests import build_request_sensor

DAILY_JOB = "daily_retention"

# partitioned asset checks are marked preview in this Dagster release; the warning would only add noise
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_definitions(catalog_path: str | None = None, policy_path: str | None = None) -> dg.Definitions:
    catalog_path = catalog_path or str(settings.catalog_path())
    policy_path = policy_path or str(settings.policy_path())
    config = load_config(catalog_path, policy_path)
    partitions = daily_partitions(config.policy.business_timezone)
    sources = list(config.catalog.sources)
    assets = [build_snapshot_asset(s, partitions) for s in sources]
    assets += build_planning_assets(sources, partitions)
    assets += build_apply_assets(sources, partitions)
    assets += build_quality_definitions(sources, partitions)
    assets.append(build_report_asset(sources, partitions))
    assets.append(build_suppression_asset(sources, partitions))
    assets.append(build_export_purge_asset(partitions))

    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all(),
        description="Snapshot, tag, plan, apply and verify for one as-of day.",
        tags={JOB_TAG: DAILY_TAG_VALUE},
    )

    @dg.schedule(
        cron_schedule="30 0 * * *",
        job=daily_job,
        execution_timezone=config.policy.business_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def nightly_retention(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Just after midnight, run the day that has just ended, so every deadline of that day has passed."""
        local = context.scheduled_execution_time.astimezone(config.policy.timezone)
        day = (local.date() - dt.timedelta(days=1)).isoformat()
        return dg.RunRequest(run_key=day, partition_key=day)

    return dg.Definitions(
        assets=assets,
        jobs=[daily_job, subject_request_job],
        schedules=[nightly_retention],
        sensors=[
            build_request_sensor(catalog_path, policy_path),
            build_alert_sensor(daily_job, catalog_path, policy_path),
        ],
        resources={"estate": EstateResource(catalog_path=catalog_path, policy_path=policy_path)},
        loggers={"console": dg.colored_console_logger, "progress": progress_logger},
    )


defs = build_definitions()

"""Running the daily job in-process on the local Dagster instance (for `make demo` and `retention run`)."""

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from retention.config import settings
from retention.config.settings import var_dir
from sensors.alerts import alert_failed_run

DAGSTER_YAML = """# Local Dagster instance of the retention engine (SQLite storage under this folder).
telemetry:
  enabled: false
"""


def local_instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME, defaulting to var/dagster, the one `make ui` opens too."""
    home = Path(os.environ.get("DAGSTER_HOME") or var_dir() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "dagster.yaml"
    if not config_file.exists():
        config_file.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


PLAN_ONLY_GROUPS = ("snapshot", "plan")


def run_daily(
    as_of: dt.date, *, confirm_large_plan: bool = False, log_level: str = "WARNING", plan_only: bool = False
) -> dg.ExecuteInProcessResult:
    """One day of the daily job; `plan_only` stops after the plan (a dry run, e.g. for backfills)."""
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
        return result

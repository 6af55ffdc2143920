"""The daily job's housekeeping of Dagster's own storage: finished runs past their keeping time are removed, and
step outputs an earlier version left in the Dagster home."""

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from assets.report import COMPLIANCE_REPORT
from pipelines.history import prune_runs, remove_legacy_outputs
from retention.config import settings

RUN_HISTORY = dg.AssetKey(["run_history_pruned"])


def build_history_asset(partitions: dg.PartitionsDefinition, output_keys: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """`output_keys`: the assets whose outputs Dagster's default IO manager used to keep in the home."""

    @dg.asset(
        key=RUN_HISTORY,
        deps=[COMPLIANCE_REPORT],
        group_name="report",
        partitions_def=partitions,
        description=(
            "Removes runs of any job that ended more than RETENTION_RUN_KEEP_DAYS days ago (default 90; 0 keeps "
            "them), with their event logs and step logs, after the day's report has read this run's checks; and the "
            "asset outputs earlier versions pickled into the Dagster home."
        ),
    )
    def run_history_pruned(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        keep_days = settings.run_keep_days()
        pruned = prune_runs(context.instance, keep_days, now=dt.datetime.now(dt.UTC), keep=context.run.run_id)
        if pruned.runs:
            context.log.info(f"{pruned.runs} runs older than {keep_days} days removed from the Dagster instance")
        freed = remove_legacy_outputs(Path(context.instance.storage_directory()), output_keys)
        if freed:
            context.log.info(f"{freed / 1e6:.1f} MB of outputs an earlier version kept in the Dagster home removed")
        return dg.MaterializeResult(
            metadata={
                "runs_removed": dg.MetadataValue.int(pruned.runs),
                "keep_days": dg.MetadataValue.int(keep_days),
                "legacy_output_bytes_removed": dg.MetadataValue.int(freed),
            }
        )

    return run_history_pruned

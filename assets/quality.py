"""Data-quality checks as Dagster asset checks: the snapshot suites per source, and the source schema per source.

The snapshot checks run in one step per source (one Great Expectations context, one pass over the frames);
two of them are blocking, so the subject index, the plan and the apply step wait for them and do not run when
keys are missing or duplicated or dates lie in the future. The schema is its own small asset, reflected
straight from the database, so that a dropped column is reported by name even when the snapshot of that
source cannot be read at all.
"""

import datetime as dt
import warnings
from collections.abc import Iterator

import dagster as dg

from assets.snapshots import snapshot_asset_key
from pipelines.resources import EstateResource
from retention.daily.snapshot import SourceSnapshot
from retention.quality.checks import SCHEMA_CHECKS, SNAPSHOT_CHECKS, CheckDef, QualityRun
from retention.quality.gx import data_docs_index
from retention.quality.run import check_schema, check_snapshot
from retention.quality.suites import reflect_columns
from retention.reporting.alerts import BLOCKING_CHECK, Alert, raise_alerts


def schema_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["source_schema", source])


def _check_results(
    asset_key: dg.AssetKey, run: QualityRun, checks: tuple[CheckDef, ...]
) -> Iterator[dg.AssetCheckResult]:
    docs = dg.MetadataValue.path(str(run.docs_index or data_docs_index()))
    for check in checks:
        outcome = run.outcomes[check.name]
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=check.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "summary": dg.MetadataValue.text(outcome.summary()),
                "failures": dg.MetadataValue.md(outcome.markdown()),
                "expectations": dg.MetadataValue.int(outcome.expectations),
                "failed_expectations": dg.MetadataValue.int(len(outcome.findings)),
                "data_docs": docs,
            },
        )


def _alert_blocking(
    context: dg.AssetCheckExecutionContext, estate: EstateResource, asset_key: dg.AssetKey, run: QualityRun
) -> None:
    """Record a failed blocking check at once: a run launched without the sensor's daemon must not be silent."""
    failed = run.failed_blocking
    if not failed:
        return
    now = dt.datetime.now(dt.UTC)
    raise_alerts(
        estate.estate.control,
        [
            Alert(
                run_id=context.run.run_id,
                job_name=context.run.job_name,
                partition_key=context.partition_key,
                kind=BLOCKING_CHECK,
                subject=f"{asset_key.to_user_string()}:{outcome.check.name}",
                error=f"BlockingCheckFailed: {outcome.summary()}",
                occurred_at=now,
            )
            for outcome in failed
        ],
    )


def build_quality_definitions(
    sources: list[str], partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    built: list[dg.AssetsDefinition | dg.AssetChecksDefinition] = []
    for source in sources:
        built += [_snapshot_checks(source, partitions), _schema_asset(source, partitions)]
    return built


def _snapshot_checks(source: str, partitions: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    key = snapshot_asset_key(source)
    # Partitioned like the apply step's checks, so the UI shows a result per as-of day; Dagster calls a
    # partitioned spec (as opposed to a partitioned @asset_check) a preview, which is the same feature.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        specs = [
            dg.AssetCheckSpec(
                c.name, asset=key, description=c.description, blocking=c.blocking, partitions_def=partitions
            )
            for c in SNAPSHOT_CHECKS
        ]

    @dg.multi_asset_check(
        name=f"snapshot_{source}_quality",
        specs=specs,
        ins={"snapshot": dg.AssetIn(key=key)},
        description=f"Great Expectations suites generated from the catalog, on the snapshot of {source}.",
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, estate: EstateResource, snapshot: SourceSnapshot
    ) -> Iterator[dg.AssetCheckResult]:
        as_of = dt.date.fromisoformat(context.partition_key)
        run = check_snapshot(
            estate.config,
            source,
            snapshot,
            estate.estate.sources[source],
            as_of,
            run_name=f"{as_of} run {context.run.run_id[:8]}",
            control=estate.estate.control,
        )
        context.log.info(f"{source}: {len(run.suites)} suites in {run.seconds:.2f} s; Data Docs: {run.docs_index}")
        _alert_blocking(context, estate, key, run)
        yield from _check_results(key, run, SNAPSHOT_CHECKS)

    return _checks


def _schema_asset(source: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = schema_asset_key(source)

    @dg.asset(
        key=key,
        group_name="quality",
        partitions_def=partitions,
        kinds={"sql"},
        check_specs=[
            dg.AssetCheckSpec(c.name, asset=key, description=c.description, blocking=c.blocking) for c in SCHEMA_CHECKS
        ],
        description=(
            f"The columns of every catalogued table of the {source} database, reflected (names only, no rows), "
            "checked against the catalog."
        ),
    )
    def _schema(context: dg.AssetExecutionContext, estate: EstateResource) -> Iterator[dg.Output | dg.AssetCheckResult]:
        config = estate.config
        tables = list(config.catalog.sources[source].tables)
        columns = reflect_columns(estate.estate.sources[source], tables)
        as_of = context.partition_time_window.start.date()
        run = check_schema(config, source, columns, run_name=f"{as_of} run {context.run.run_id[:8]}")
        yield dg.Output(
            columns,
            metadata={
                "tables": dg.MetadataValue.int(sum(1 for cols in columns.values() if cols)),
                "columns": dg.MetadataValue.md(
                    "| table | columns |\n|---|---|\n"
                    + "\n".join(f"| {t} | {', '.join(cols) or '(missing)'} |" for t, cols in columns.items())
                ),
            },
        )
        yield from _check_results(key, run, SCHEMA_CHECKS)

    return _schema

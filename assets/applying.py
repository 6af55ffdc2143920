"""Apply assets, one per source, and the verification check after each: step 5 and 6 of the daily run.

The apply takes (or renews) the daily lease and the source's lease, and keeps the latter until its check has
verified the source, so that no request writes to the source in between; a request waits for it
(`lock_wait_seconds`)."""

import dagster as dg

from assets.planning import RETENTION_PLAN
from pipelines.coordination import run_ended
from pipelines.progress import progress_message
from pipelines.resources import EstateResource
from retention.apply.applier import SourceApplier
from retention.apply.heap import frozen_heap
from retention.apply.result import ApplyResult
from retention.apply.verification import verify
from retention.daily.planning import Plan
from retention.storage.leases import DAILY, acquire, lease_seconds, release, source_lease

APPLIED_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("table", "string"),
        dg.TableColumn("deleted", "int", description="rows deleted"),
        dg.TableColumn("updated", "int", description="rows pseudonymised or cleared"),
        dg.TableColumn("entries", "int", description="ledger entries: one per row and purpose"),
    ]
)


def apply_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["apply", source])


def _applier(estate: EstateResource, source: str, run_id: str, as_of) -> SourceApplier:
    assert estate.estate.control is not None
    return SourceApplier(
        estate.config,
        source,
        estate.estate.sources[source],
        estate.estate.control,
        estate.keyring,
        run_id=run_id,
        as_of=as_of,
        batch_rows=estate.apply_batch_rows,
    )


def build_apply_assets(sources: list[str], partitions: dg.PartitionsDefinition) -> list:
    built: list = []
    for source in sources:
        built += _build_forsource(source, partitions)
    return built


def _build_forsource(source: str, partitions: dg.PartitionsDefinition) -> list:
    key = apply_asset_key(source)

    @dg.asset(
        key=key,
        ins={"retention_plan": dg.AssetIn(key=RETENTION_PLAN)},
        group_name="apply",
        partitions_def=partitions,
        kinds={"sql"},
        description=(
            f"Executes the plan on the {source} database: deletes, pseudonymises and clears in batches, one "
            "transaction a batch, children before parents, and records every action in the ledger."
        ),
    )
    def _apply(
        context: dg.AssetExecutionContext,
        estate: EstateResource,
        retention_plan: Plan,
    ) -> dg.Output[ApplyResult]:
        run_id = context.run.run_id
        applier = _applier(estate, source, run_id, retention_plan.as_of)
        applier.progress = lambda table, done, total: context.log.debug(progress_message(table, done, total))
        control = applier.control
        acquire(
            control,
            [DAILY, source_lease(source)],
            run_id,
            seconds=lease_seconds(),
            wait_seconds=applier.lease_wait_seconds,
            what=f"writing to the {source} database",
            finished=lambda owner: run_ended(context.instance, owner),
        )
        try:
            with frozen_heap():
                result = applier.apply(retention_plan)
        except BaseException:
            release(control, run_id, [source_lease(source)])
            raise
        lines = ["| table | rows deleted | rows updated | ledger entries |", "|---|---:|---:|---:|"]
        lines += [f"| {t} | {o.deleted} | {o.updated} | {o.entries} |" for t, o in result.tables.items()]
        context.log.info(
            f"{source}: {result.entries} actions in {result.batches} batches"
            + (f", {result.recovered_batches} batches of an earlier run finished" if result.recovered_batches else "")
        )
        return dg.Output(
            result,
            metadata={
                "actions": dg.MetadataValue.int(result.entries),
                "batches": dg.MetadataValue.int(result.batches),
                "recovered_batches": dg.MetadataValue.int(result.recovered_batches),
                "tables": dg.MetadataValue.md("\n".join(lines)),
                "applied": dg.MetadataValue.table(
                    [
                        dg.TableRecord({"table": t, "deleted": o.deleted, "updated": o.updated, "entries": o.entries})
                        for t, o in result.tables.items()
                    ],
                    schema=APPLIED_SCHEMA,
                ),
            },
        )

    @dg.asset_check(
        asset=key,
        name="verified_after_apply",
        blocking=True,
        partitions_def=partitions,
        description=(
            "Planned rows are gone or changed as planned, no changed row still holds the value it had, and "
            "every held row is byte-for-byte unchanged (keyed checksums taken before apply)."
        ),
    )
    def _verify(
        context: dg.AssetCheckExecutionContext, estate: EstateResource, result: ApplyResult
    ) -> dg.AssetCheckResult:
        applier = _applier(estate, source, context.run.run_id, None)
        try:
            problems = verify(applier, result)
        finally:
            release(applier.control, context.run.run_id, [source_lease(source)])
        held = sum(len(d) for d in result.verification.held.values())
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
                "held_rows_checked": dg.MetadataValue.int(held),
            },
        )

    return [_apply, _verify]

"""Snapshot assets, one per source: what the rules need, with identifiers already keyed."""

import dagster as dg

from pipelines.resources import EstateResource
from retention.apply.faults import fault
from retention.daily.snapshot import SourceSnapshot, snapshot_source


def snapshot_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["snapshot", source])


def build_snapshot_asset(source: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=snapshot_asset_key(source),
        group_name="snapshot",
        partitions_def=partitions,
        kinds={"sql", "pandas"},
        description=(
            f"Keys, parent keys, keyed identifier tokens and timestamps of every catalogued table of the "
            f"{source} database. No raw personal values."
        ),
    )
    def _snapshot(context: dg.AssetExecutionContext, estate: EstateResource) -> dg.Output[SourceSnapshot]:
        config = estate.config
        engine = estate.estate.sources[source]

        def progress(table: str, rows: int) -> None:
            context.log.debug(f"{source}.{table}: {rows} rows read")

        snap = snapshot_source(
            engine, config.catalog, source, estate.subject_key, config.policy.timezone, progress=progress
        )
        fault("snapshot", list(config.catalog.sources).index(source) + 1)
        rows = {table: s.rows for table, s in snap.items()}
        context.log.info(f"snapshot of {source}: " + ", ".join(f"{t} {n}" for t, n in rows.items()))
        return dg.Output(
            snap,
            metadata={
                "rows": dg.MetadataValue.int(sum(rows.values())),
                "tables": dg.MetadataValue.md(
                    "| table | rows |\n|---|---:|\n" + "\n".join(f"| {t} | {n} |" for t, n in rows.items())
                ),
            },
        )

    return _snapshot

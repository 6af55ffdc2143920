"""Snapshot assets, one per source: what the rules need, with identifiers already keyed."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import dagster as dg

from pipelines.resources import EstateResource
from retention.apply.faults import fault
from retention.config.catalog import Catalog, IdentifierKind, TableEntry
from retention.daily.snapshot import SourceSnapshot, snapshot_source

TEXT_IDENTIFIERS = (IdentifierKind.EMAIL, IdentifierKind.PHONE)
"""Identifier kinds whose column check-config accepts only as text."""

COLUMN_SCHEMA = "dagster/column_schema"
"""The metadata key the asset catalog reads a table's columns from."""

ROW_COUNTS_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn("table", "string"), dg.TableColumn("rows", "int", description="rows snapshotted")]
)


def snapshot_asset_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["snapshot", source])


@dataclass
class _Column:
    """What the catalog says about one column of a table, gathered from every place it names the column."""

    roles: list[str] = field(default_factory=list)
    type: str = "unknown"
    tags: dict[str, str] = field(default_factory=dict)
    key: bool = False
    dated: bool = False


def _catalogued_columns(entry: TableEntry) -> dict[str, _Column]:
    found: dict[str, _Column] = {}

    def column(name: str) -> _Column:
        return found.setdefault(name, _Column())

    for name in entry.primary_key:
        column(name).roles.append("primary key")
        column(name).key = True
    if entry.subject.parent and entry.subject.foreign_key:
        column(entry.subject.foreign_key).roles.append(f"links the row to its person's {entry.subject.parent} row")
        column(entry.subject.foreign_key).key = True
    for kind, name in entry.subject.identifiers.items():
        column(name).roles.append(f"identifies the person ({kind.value})")
        column(name).tags["identifier"] = kind.value
        if kind in TEXT_IDENTIFIERS:
            column(name).type = "text"
    for name, spec in entry.columns.items():
        needed = ", ".join(spec.purposes or entry.purposes)
        column(name).roles.append(f"personal data ({spec.category.value}), anonymiser {spec.anonymizer}")
        column(name).roles.append(f"needed by the purposes {needed}")
        column(name).tags.update({"category": spec.category.value, "pii": "", "anonymizer": spec.anonymizer})
    dated = [(name, "interaction") for name in entry.interactions]
    dated += [(entry.record_date, "record date")] if entry.record_date else []
    dated += [(name, f"event {event}") for event, name in entry.events.items()]
    for name, role in dated:
        fmt = entry.date_formats.get(name)
        column(name).roles.append(f"{role}, stored as text in the format {fmt}" if fmt else role)
        column(name).dated = True
        column(name).type = "text" if fmt else "timestamp"
    for name in entry.not_personal:
        column(name).roles.append("reviewed: not personal data")
    for gathered in found.values():
        if gathered.key and not gathered.dated:
            gathered.type = "key"
    return found


def column_schema(catalog: Catalog, source: str) -> dg.TableSchema:
    """The catalogued columns of every table of a source, named `table.column`, with the type as far as the
    catalog knows it ("key", "timestamp", "text", else "unknown": it names no SQL types) and the category of
    personal data as a column tag, so the asset catalog shows which columns hold personal data. Built from the
    catalog alone: it holds names, never values, and is the same before any run as after one."""
    columns = []
    for table, entry in catalog.sources[source].tables.items():
        single_key = len(entry.primary_key) == 1
        for name, gathered in _catalogued_columns(entry).items():
            is_pk = name in entry.primary_key
            columns.append(
                dg.TableColumn(
                    f"{table}.{name}",
                    gathered.type,
                    description="; ".join(gathered.roles),
                    constraints=dg.TableColumnConstraints(nullable=not is_pk, unique=is_pk and single_key),
                    tags=gathered.tags,
                )
            )
    return dg.TableSchema(columns=columns)


def row_count_metadata(rows: Mapping[str, int]) -> dict[str, dg.MetadataValue]:
    """The total as Dagster's row count, and one row per table."""
    return {
        "dagster/row_count": dg.MetadataValue.int(sum(rows.values())),
        "row_counts": dg.MetadataValue.table(
            [dg.TableRecord({"table": t, "rows": n}) for t, n in rows.items()], schema=ROW_COUNTS_SCHEMA
        ),
    }


def build_snapshot_asset(catalog: Catalog, source: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    schema = column_schema(catalog, source)

    @dg.asset(
        key=snapshot_asset_key(source),
        group_name="snapshot",
        partitions_def=partitions,
        kinds={"sql", "pandas"},
        description=(
            f"Keys, parent keys, keyed identifier tokens and timestamps of every catalogued table of the "
            f"{source} database. No raw personal values. The column schema lists the catalogued columns of the "
            "source's tables, personal ones tagged with their category."
        ),
        metadata={COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema)},
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
                COLUMN_SCHEMA: dg.MetadataValue.table_schema(schema),
                **row_count_metadata(rows),
            },
        )

    return _snapshot

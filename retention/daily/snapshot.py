"""Reading what the rules need from a source, in chunks, with identifiers turned into keyed tokens at once.

A snapshot holds primary keys, parent keys, identifier tokens and timestamps: never a raw e-mail, name,
phone, address or free text, so it can be stored by Dagster without becoming a new copy of personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.catalog import Catalog, TableEntry
from retention.config.database import column_kind
from retention.rules import columns
from retention.rules.calendar import has_time, parse_text_dates, to_utc
from retention.rules.identity import DEFAULT_REGION, tokenise_series
from retention.storage.frames import rows_frame
from retention.storage.row_keys import RowKey

DEFAULT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class TableSnapshot:
    """What one table holds, without raw values.

    `frame` columns: pk; fk (the subject link's parent key, if any); ref:<column> for every foreign key the
    database declares; id:<kind> identifier tokens; has:<column> (is the personal-data column filled);
    and one UTC timestamp per dated column. `refs` maps each ref column to the table it references.
    """

    frame: pd.DataFrame
    date_only: frozenset[str] = field(default_factory=frozenset)
    refs: dict[str, str] = field(default_factory=dict)
    taken_at: dt.datetime | None = None
    """When the read began (UTC): a row changed later may or may not be in the frame."""

    @property
    def rows(self) -> int:
        return len(self.frame)


SourceSnapshot = dict[str, TableSnapshot]


def snapshot_table(
    engine: sa.Engine,
    table_name: str,
    entry: TableEntry,
    key: Key,
    tz: ZoneInfo,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    where: Callable[[sa.Table], sa.ColumnElement[bool]] | None = None,
    region: str = DEFAULT_REGION,
    metadata: sa.MetaData | None = None,
) -> TableSnapshot:
    """`where` limits the rows read (a subject request reads one person's rows by their keys); `region` is the
    source's phone region (`Catalog.region_of`); `metadata` keeps the tables reflected for later reads of the
    same source (a request reads each table several times)."""
    table = sa.Table(table_name, sa.MetaData() if metadata is None else metadata, autoload_with=engine)
    dated = entry.timestamp_columns()
    date_only = frozenset(
        c
        for c in dated
        if column_kind(table.c[c].type) == "date" or (c in entry.date_formats and not has_time(entry.date_formats[c]))
    )
    row_key = RowKey.of(table, entry.primary_key)
    wanted = {}
    if entry.subject.foreign_key:
        wanted[entry.subject.foreign_key] = "fk"
    refs = {
        columns.ref(fk.parent.name): fk.column.table.name
        for fk in table.foreign_keys
        if fk.constraint is not None and len(fk.constraint.columns) == 1
    }
    selected = [
        *row_key.selected(table),
        *(table.c[col].label(alias) for col, alias in wanted.items()),
        *(table.c[name[4:]].label(name) for name in refs),
        *(table.c[col].label(columns.identifier(kind.value)) for kind, col in entry.subject.identifiers.items()),
        *(table.c[col].is_not(None).label(columns.has(col)) for col in entry.columns),
        *(table.c[col] for col in dated),
    ]
    select = sa.select(*selected).order_by(*row_key.order_by(table))
    if where is not None:
        select = select.where(where(table))
    names = [c.name for c in selected]

    def convert(chunk: pd.DataFrame) -> pd.DataFrame:
        chunk = row_key.joined(chunk)
        for kind in entry.subject.identifiers:
            name = columns.identifier(kind.value)
            chunk[name] = tokenise_series(key, kind, chunk[name], region)
        for col in dated:
            if col in entry.date_formats:
                chunk[col] = parse_text_dates(chunk[col], entry.date_formats[col])
            chunk[col] = to_utc(chunk[col], tz)
        for col in entry.columns:
            chunk[columns.has(col)] = chunk[columns.has(col)].astype(bool)
        return chunk

    frames: list[pd.DataFrame] = []
    done = 0
    taken_at = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(select)
        for rows in result.partitions(chunk_rows):
            frames.append(convert(rows_frame(rows, names)))
            done += len(frames[-1])
            if progress is not None:
                progress(done)
    frame = pd.concat(frames, ignore_index=True) if frames else convert(pd.DataFrame(columns=names))
    return TableSnapshot(frame, date_only, refs, taken_at)


def snapshot_source(
    engine: sa.Engine,
    catalog: Catalog,
    source: str,
    key: Key,
    tz: ZoneInfo,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[str, int], None] | None = None,
) -> SourceSnapshot:
    return {
        name: snapshot_table(
            engine,
            name,
            entry,
            key,
            tz,
            chunk_rows=chunk_rows,
            progress=partial(progress, name) if progress else None,
            region=catalog.region_of(source),
        )
        for name, entry in catalog.sources[source].tables.items()
    }

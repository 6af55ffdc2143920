"""The estate as one person's request sees it: snapshots, subject index and tagged records, no raw values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.catalog import Catalog, IdentifierKind, TableEntry, TableId
from retention.config.database import column_kind
from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.daily.flow import index_subjects
from retention.daily.snapshot import SourceSnapshot, TableSnapshot, snapshot_source, snapshot_table
from retention.daily.subjects import SubjectIndex, build_subject_index
from retention.daily.tagging import Tagged, tag_records
from retention.requests.model import SubjectRequest
from retention.requests.register import (
    subjects_of_tokens,
    tokens_of,
)
from retention.rules import columns
from retention.storage.control import (
    load_activity,
    load_known_subjects,
    load_token_subjects,
    save_activity,
    save_token_subjects,
    shared_among,
)
from retention.storage.engines import Estate
from retention.storage.row_keys import RowKey
from retention.storage.schema import ensure_schema
from retention.storage.subject_index import indexed_rows, indexed_subjects, load_marks

Progress = Callable[[str], None]


@dataclass
class EstateView:
    """The estate as the daily run sees it: snapshots, subject index and tagged records (no raw values)."""

    snapshots: dict[str, SourceSnapshot]
    index: SubjectIndex
    tagged: Tagged

    def rows_of(self, table: TableId, subjects: Collection[str]) -> pd.DataFrame:
        frame = self.tagged[table].frame
        return frame[frame["subject"].isin(list(subjects))]


def read_estate(config: EstateConfig, estate: Estate, keyring: Keyring, progress: Progress | None = None) -> EstateView:
    """Snapshot every source and index subjects exactly as the daily run does (and remember what was seen)."""
    say = progress or (lambda _m: None)
    assert estate.control is not None
    snapshots = {}
    for source, engine in estate.sources.items():
        say(f"snapshot {source}")
        snapshots[source] = snapshot_source(engine, config.catalog, source, keyring.subject, config.policy.timezone)
    say("subject index")
    index = index_subjects(config, snapshots, keyring.subject, estate.control)
    tagged = tag_records(config.catalog, config.policy, snapshots, index)
    return EstateView(snapshots, index, tagged)


IN_CHUNK = 5000  # keys per IN list: every backend takes this many parameters in one statement


def _in_values(column: str, values: list[object]) -> Callable[[sa.Table], sa.ColumnElement[bool]]:
    """The filter of a table's rows whose `column` is one of `values`."""
    return lambda t: t.c[column].in_(values)


def _merged(parts: Sequence[TableSnapshot]) -> TableSnapshot:
    """One table's snapshots read by several queries, each row once."""
    frame = pd.concat([p.frame for p in parts], ignore_index=True).drop_duplicates("pk", ignore_index=True)
    return dataclasses.replace(parts[0], frame=frame)


def _snapshot_where(
    config: EstateConfig,
    engine: sa.Engine,
    source: str,
    table: str,
    entry: TableEntry,
    key: Key,
    column: str,
    values: list[object],
    metadata: sa.MetaData | None = None,
) -> TableSnapshot:
    """The snapshot of the rows whose `column` is one of `values` (an index lookup per chunk of keys)."""
    tz, region = config.policy.timezone, config.catalog.region_of(source)
    if not values:
        return snapshot_table(
            engine, table, entry, key, tz, where=lambda _t: sa.false(), region=region, metadata=metadata
        )
    parts = [
        snapshot_table(engine, table, entry, key, tz, where=_in_values(column, chunk), region=region, metadata=metadata)
        for chunk in (values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK))
    ]
    return _merged(parts)


CHANGE_MARGIN = dt.timedelta(days=1)
"""How far before the index's snapshot a request still reads changed rows: a transaction that set `changed_at`
just before the snapshot began may have committed just after, and the applications' clocks may differ."""


def read_person(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    tokens: Collection[str],
    progress: Progress | None = None,
    *,
    subjects: Collection[str] = (),
) -> EstateView:
    """The estate as far as one person is concerned, read without scanning the big tables.

    A table with identifiers that declares `changed_at` and that the daily run has indexed is read by key: the
    rows the subject index gives the person and every row changed since its snapshot (which may have moved to
    or from the person). Any other table with identifiers is read whole (the identifiers are normalised and
    keyed in Python, so no database index can find them). Either way the identity groups come out exactly as
    the daily run forms them. From the rows of the subjects the tokens lead to, their child rows are read by
    foreign key, table by table, and so are other rows that reference them (a row still referenced is
    pseudonymised, not deleted). Every row of the person is in the view; rows of other people are only there
    as identity or as references. `subjects` names more people by subject key (the suppression list's).
    """
    say = progress or (lambda _m: None)
    catalog, key = config.catalog, keyring.subject
    control = estate.control
    assert control is not None
    ensure_schema(control)
    marks = load_marks(control)
    identity_tables = [(s, t) for s, t, e in catalog.tables() if e.subject.identifiers]
    by_index = {tid for tid in identity_tables if catalog.table(*tid).changed_at and tid in marks}
    whole = len(by_index) < len(identity_tables)
    indexed = indexed_rows(control, set(subjects_of_tokens(control, tokens).values()) | set(subjects), by_index)
    snapshots: dict[str, SourceSnapshot] = {source: {} for source in catalog.sources}
    schemas = {source: sa.MetaData() for source in catalog.sources}
    for source, table, entry in catalog.tables():
        engine, schema = estate.sources[source], schemas[source]
        if (source, table) in by_index:
            say(f"rows of the person and changed rows of {source}.{table}")
            since = marks[(source, table)] - CHANGE_MARGIN
            snapshots[source][table] = _indexed_or_changed(
                config, engine, source, table, entry, key, indexed[(source, table)], since, schema
            )
        elif entry.subject.identifiers:
            say(f"identifiers of {source}.{table}")
            snapshots[source][table] = snapshot_table(
                engine, table, entry, key, config.policy.timezone, region=catalog.region_of(source), metadata=schema
            )
        else:
            snapshots[source][table] = _snapshot_where(
                config, engine, source, table, entry, key, str(entry.subject.foreign_key), [], schema
            )
    seen = set(tokens) | _tokens_in(catalog, snapshots)
    shared: frozenset[str] = frozenset()
    if by_index:
        with control.connect() as conn:
            shared = frozenset(shared_among(conn, seen))
    _drop_shared(catalog, snapshots, by_index, shared)
    remembered = load_token_subjects(control, None if whole else seen)
    history = None if whole else _indexed_subjects_of(control, snapshots, by_index)
    known = load_known_subjects(control, history)
    first = build_subject_index(catalog, snapshots, key, known, None, remembered)
    save_token_subjects(control, first.tokens, remembered, first.ambiguous)
    ambiguous = first.ambiguous | shared
    people = {s for t in tokens if t not in ambiguous and (s := first.tokens.get(t) or remembered.get(t))}
    people |= set(subjects)
    if people:
        say("rows of the person")
    included = _keep_identity_rows(catalog, snapshots, first, people)
    _add_descendants(config, estate, key, snapshots, included, by_index, schemas)
    activity = load_activity(control, None if whole else set(first.subjects["subject"]))
    # the narrowed rows no longer show which weak identifiers other people share: the whole estate's index does
    index = dataclasses.replace(
        build_subject_index(catalog, snapshots, key, known, activity, remembered), ambiguous=ambiguous
    )
    save_activity(control, index.last_interaction.reindex(sorted(people)).dropna(), activity)
    return EstateView(snapshots, index, tag_records(catalog, config.policy, snapshots, index))


def _indexed_or_changed(
    config: EstateConfig,
    engine: sa.Engine,
    source: str,
    table: str,
    entry: TableEntry,
    key: Key,
    pks: list[str],
    since: dt.datetime,
    metadata: sa.MetaData,
) -> TableSnapshot:
    """The rows of a table with the given keys (the ledger's text of them) and the rows changed since the moment
    (or whose change column is empty)."""
    tz, region = config.policy.timezone, config.catalog.region_of(source)
    changed_at = str(entry.changed_at)

    def changed(t: sa.Table) -> sa.ColumnElement[bool]:
        column = t.c[changed_at]
        local = since.astimezone(tz)
        bound: object
        if column_kind(column.type) == "date":
            bound = local.date()
        elif getattr(column.type, "timezone", False):
            bound = since
        else:
            bound = local.replace(tzinfo=None)
        return sa.or_(column >= bound, column.is_(None))

    def keyed(chunk: list[str]) -> Callable[[sa.Table], sa.ColumnElement[bool]]:
        def where(t: sa.Table) -> sa.ColumnElement[bool]:
            row_key = RowKey.of(t, entry.primary_key)
            return row_key.within(t, [row_key.from_text(k) for k in chunk])

        return where

    parts = [snapshot_table(engine, table, entry, key, tz, where=changed, region=region, metadata=metadata)]
    parts += [
        snapshot_table(
            engine, table, entry, key, tz, where=keyed(pks[i : i + IN_CHUNK]), region=region, metadata=metadata
        )
        for i in range(0, len(pks), IN_CHUNK)
    ]
    return _merged(parts)


def _tokens_in(catalog: Catalog, snapshots: Mapping[str, SourceSnapshot]) -> set[str]:
    """Every identifier token of the rows read."""
    found: set[str] = set()
    for source, table, entry in catalog.tables():
        frame = snapshots[source][table].frame
        for kind in entry.subject.identifiers:
            found.update(frame[columns.identifier(kind.value)].dropna())
    return found


def _drop_shared(
    catalog: Catalog, snapshots: dict[str, SourceSnapshot], tables: Collection[TableId], shared: frozenset[str]
) -> None:
    """Take the weak tokens the daily run found shared by different people out of the rows read by key: those
    rows do not show the other people a whole read would, and a shared token joins nobody (`daily.subjects`)."""
    if not shared:
        return
    for source, table in tables:
        snap = snapshots[source][table]
        names = [columns.identifier(kind.value) for kind in catalog.table(source, table).subject.identifiers]
        frame = snap.frame.copy()
        for name in names:
            frame[name] = frame[name].where(~frame[name].isin(shared), None)
        snapshots[source][table] = dataclasses.replace(snap, frame=frame)


def _indexed_subjects_of(
    control: sa.Engine, snapshots: Mapping[str, SourceSnapshot], tables: Collection[TableId]
) -> set[str]:
    """The subjects the index gave the rows read: whose ledger history the view needs."""
    found: set[str] = set()
    for source, table in tables:
        found |= indexed_subjects(control, (source, table), [str(pk) for pk in snapshots[source][table].frame["pk"]])
    return found


def _keep_identity_rows(
    catalog: Catalog, snapshots: dict[str, SourceSnapshot], index: SubjectIndex, subjects: set[str]
) -> dict[TableId, list[object]]:
    """Narrow the identifier tables to the subjects' rows (whole identity groups, so their subject keys come
    out as in the full index) and rows that reference those by a declared foreign key; return the subjects'
    keys per table."""
    included: dict[TableId, list[object]] = {}
    for source, table, entry in catalog.tables():
        if entry.subject.identifiers:
            rows = index.rows[(source, table)]
            included[(source, table)] = rows.index[rows.isin(list(subjects))].tolist()
    for source, table, entry in catalog.tables():
        if not entry.subject.identifiers:
            continue
        snap = snapshots[source][table]
        keep = snap.frame["pk"].isin(included[(source, table)])
        for ref, parent in snap.refs.items():
            keep |= snap.frame[ref].isin(included.get((source, parent), []))
        snapshots[source][table] = dataclasses.replace(snap, frame=snap.frame[keep].reset_index(drop=True))
    return included


def _add_descendants(
    config: EstateConfig,
    estate: Estate,
    key: Key,
    snapshots: dict[str, SourceSnapshot],
    included: dict[TableId, list[object]],
    read_by_key: Collection[TableId],
    schemas: Mapping[str, sa.MetaData],
) -> None:
    """Read the child rows of the included rows by foreign key, parents before children, then the rows that
    reference any of them by another declared foreign key (in the identifier tables `read_by_key` too: the
    others were read whole)."""
    catalog = config.catalog
    pending = [(s, t) for s, t, e in catalog.tables() if not e.subject.identifiers]
    while pending:
        ready = [tid for tid in pending if (tid[0], catalog.table(*tid).subject.parent) in included]
        if not ready:
            break  # unresolvable parent links: the catalog check reports them
        for source, table in ready:
            entry = catalog.table(source, table)
            parent = entry.subject.parent
            assert parent is not None, "a table without identifiers has a parent (catalog validation)"
            parent_keys = included[(source, parent)]
            snap = _snapshot_where(
                config,
                estate.sources[source],
                source,
                table,
                entry,
                key,
                str(entry.subject.foreign_key),
                parent_keys,
                schemas[source],
            )
            snapshots[source][table] = snap
            included[(source, table)] = snap.frame["pk"].tolist()
            pending.remove((source, table))
    for source, table, entry in catalog.tables():
        if entry.subject.identifiers and (source, table) not in read_by_key:
            continue
        snap = snapshots[source][table]
        for ref, parent in snap.refs.items():
            column = columns.ref_column(ref)
            targets = included.get((source, parent))
            if column == entry.subject.foreign_key or not targets:
                continue
            extra = _snapshot_where(
                config, estate.sources[source], source, table, entry, key, column, targets, schemas[source]
            )
            snapshots[source][table] = _merged([snapshots[source][table], extra])


@dataclass(frozen=True)
class Match:
    """Whom the identifiers point at: subjects that still have rows, and what matched."""

    subjects: frozenset[str]
    kinds_matched: tuple[str, ...]
    ambiguous: bool
    shared: tuple[str, ...] = ()
    """Kinds of identifier given that several people share (weak and ambiguous): not used to match."""


def find_person(
    view: EstateView, control: sa.Engine, request: SubjectRequest, keyring: Keyring, regions: Sequence[str]
) -> Match:
    """Match the keyed tokens of the identifiers given against the subject index (current and remembered); a
    phone without country code is read in each of the estate's `regions`."""
    identifiers = request.identifiers or {}
    tokens = {
        kind: tokens_of(keyring.subject, {IdentifierKind(kind): value}, regions) for kind, value in identifiers.items()
    }
    shared = {kind for kind, ts in tokens.items() if set(ts) & view.index.ambiguous}
    usable = {kind: ts for kind, ts in tokens.items() if kind not in shared}
    mapping = subjects_of_tokens(control, [t for ts in usable.values() for t in ts])
    living = set(view.index.subjects["subject"])
    by_kind = {
        kind: found for kind, ts in usable.items() if (found := {mapping[t] for t in ts if t in mapping} & living)
    }
    subjects = frozenset[str]().union(*by_kind.values())
    return Match(subjects, tuple(sorted(by_kind)), len(subjects) > 1, tuple(sorted(shared)))

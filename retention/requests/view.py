"""The estate as one person's request sees it: snapshots, subject index and tagged records, no raw values."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.catalog import Catalog, IdentifierKind, TableEntry, TableId
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
)
from retention.storage.engines import Estate
from retention.storage.schema import ensure_schema

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


def _snapshot_where(
    config: EstateConfig,
    engine: sa.Engine,
    source: str,
    table: str,
    entry: TableEntry,
    key: Key,
    column: str,
    values: list[object],
) -> TableSnapshot:
    """The snapshot of the rows whose `column` is one of `values` (an index lookup per chunk of keys)."""
    tz, region = config.policy.timezone, config.catalog.region_of(source)
    if not values:
        return snapshot_table(engine, table, entry, key, tz, where=lambda _t: sa.false(), region=region)
    parts = [
        snapshot_table(engine, table, entry, key, tz, where=_in_values(column, chunk), region=region)
        for chunk in (values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK))
    ]
    frame = pd.concat([p.frame for p in parts], ignore_index=True).drop_duplicates("pk", ignore_index=True)
    return TableSnapshot(frame, parts[0].date_only, parts[0].refs)


def read_person(
    config: EstateConfig, estate: Estate, keyring: Keyring, tokens: Collection[str], progress: Progress | None = None
) -> EstateView:
    """The estate as far as one person is concerned, read without scanning the big tables.

    Tables that carry identifiers are read whole (the identifiers are normalised and keyed in Python, so no
    index can find them), which gives the identity groups exactly as the daily run forms them. From the rows
    of the subjects the tokens lead to, their child rows are read by foreign key, table by table, and so are
    other rows that reference them (a row still referenced is pseudonymised, not deleted). Every row of the
    person is in the view; rows of other people are only there as identity or as references.
    """
    say = progress or (lambda _m: None)
    catalog, key = config.catalog, keyring.subject
    control = estate.control
    assert control is not None
    ensure_schema(control)
    known, activity, remembered = load_known_subjects(control), load_activity(control), load_token_subjects(control)
    snapshots: dict[str, SourceSnapshot] = {source: {} for source in catalog.sources}
    for source, table, entry in catalog.tables():
        engine = estate.sources[source]
        if entry.subject.identifiers:
            say(f"identifiers of {source}.{table}")
            snapshots[source][table] = snapshot_table(
                engine, table, entry, key, config.policy.timezone, region=catalog.region_of(source)
            )
        else:
            snapshots[source][table] = _snapshot_where(
                config, engine, source, table, entry, key, str(entry.subject.foreign_key), []
            )
    first = build_subject_index(catalog, snapshots, key, known, activity, remembered)
    save_token_subjects(control, first.tokens, remembered, first.ambiguous)
    subjects = {s for t in tokens if t not in first.ambiguous and (s := first.tokens.get(t) or remembered.get(t))}
    if subjects:
        say("rows of the person")
    included = _keep_identity_rows(catalog, snapshots, first, subjects)
    _add_descendants(config, estate, key, snapshots, included)
    # the narrowed rows no longer show which weak identifiers other people share: the whole estate's index does
    index = dataclasses.replace(
        build_subject_index(catalog, snapshots, key, known, activity, remembered), ambiguous=first.ambiguous
    )
    save_activity(control, index.last_interaction.reindex(sorted(subjects)).dropna(), activity)
    return EstateView(snapshots, index, tag_records(catalog, config.policy, snapshots, index))


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
        snapshots[source][table] = TableSnapshot(snap.frame[keep].reset_index(drop=True), snap.date_only, snap.refs)
    return included


def _add_descendants(
    config: EstateConfig,
    estate: Estate,
    key: Key,
    snapshots: dict[str, SourceSnapshot],
    included: dict[TableId, list[object]],
) -> None:
    """Read the child rows of the included rows by foreign key, parents before children, then the rows that
    reference any of them by another declared foreign key."""
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
                config, estate.sources[source], source, table, entry, key, str(entry.subject.foreign_key), parent_keys
            )
            snapshots[source][table] = snap
            included[(source, table)] = snap.frame["pk"].tolist()
            pending.remove((source, table))
    for source, table, entry in catalog.tables():
        if entry.subject.identifiers:
            continue
        snap = snapshots[source][table]
        for ref, parent in snap.refs.items():
            column = columns.ref_column(ref)
            targets = included.get((source, parent))
            if column == entry.subject.foreign_key or not targets:
                continue
            extra = _snapshot_where(config, estate.sources[source], source, table, entry, key, column, targets)
            frame = pd.concat([snapshots[source][table].frame, extra.frame], ignore_index=True)
            snapshots[source][table] = TableSnapshot(
                frame.drop_duplicates("pk", ignore_index=True), snap.date_only, snap.refs
            )


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

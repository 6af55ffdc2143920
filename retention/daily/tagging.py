"""Tagged records: every row with its subject, purposes, the deadline of each purpose, and why it may lack one.

Deadlines depend only on the data and the policy, not on the as-of day, so one tagging serves every day's
plan. A row whose clock has no usable date gets no deadline and is reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from retention.config.catalog import Catalog, TableEntry, TableId
from retention.config.policy import Policy
from retention.daily.snapshot import SourceSnapshot, TableSnapshot
from retention.daily.subjects import SubjectIndex, interaction_moments
from retention.rules import columns
from retention.rules.calendar import UTC_DTYPE, as_utc, end_of_local_day
from retention.rules.clocks import purpose_deadline


@dataclass(frozen=True)
class TaggedTable:
    """`frame`: pk, subject, last_interaction, record, event:<name>, deadline:<purpose>, undated:<purpose>,
    waiting:<purpose> (event not yet happened), has:<column>, ref:<column>."""

    frame: pd.DataFrame
    purposes: tuple[str, ...]
    refs: dict[str, str]


Tagged = dict[TableId, TaggedTable]


def _moment(snap: TableSnapshot, column: str, tz) -> pd.Series:
    """A date-only value means its whole day, so the purpose lasts until that day is over."""
    values = snap.frame[column]
    return end_of_local_day(values, tz) if column in snap.date_only else values.astype(UTC_DTYPE)


def _events(
    catalog: Catalog,
    snapshots: Mapping[str, SourceSnapshot],
    source: str,
    table: str,
    tz,
    memo: dict[TableId, pd.DataFrame],
) -> pd.DataFrame:
    """Event moments per row, own events first, then those inherited from the parent row (indexed by pk)."""
    if (source, table) in memo:
        return memo[(source, table)]
    entry = catalog.table(source, table)
    snap = snapshots[source][table]
    frame = pd.DataFrame(index=snap.frame["pk"].to_numpy())
    for event, column in entry.events.items():
        frame[event] = _moment(snap, column, tz).array
    parent = entry.subject.parent
    if parent is not None:
        inherited = _events(catalog, snapshots, source, parent, tz, memo)
        for event in inherited.columns:
            if event not in frame.columns:
                frame[event] = inherited[event].reindex(snap.frame["fk"].to_numpy()).pipe(as_utc).array
    memo[(source, table)] = frame
    return frame


def _record(
    catalog: Catalog,
    snapshots: Mapping[str, SourceSnapshot],
    source: str,
    table: str,
    tz,
    memo: dict[TableId, pd.DataFrame],
) -> pd.DataFrame:
    """Each row's record moment and its record date as stored (indexed by pk): its own, or with
    `inherit_record_date` its parent row's, up the chain."""
    if (source, table) in memo:
        return memo[(source, table)]
    entry = catalog.table(source, table)
    snap = snapshots[source][table]
    pks = snap.frame["pk"].to_numpy()
    if entry.inherit_record_date and entry.subject.parent is not None:
        parent = _record(catalog, snapshots, source, entry.subject.parent, tz, memo)
        fks = snap.frame["fk"].to_numpy()
        frame = pd.DataFrame(
            {"record": parent["record"].reindex(fks).array, "raw": parent["raw"].reindex(fks).array}, index=pks
        )
    elif entry.record_date:
        frame = pd.DataFrame(
            {"record": _moment(snap, entry.record_date, tz).array, "raw": snap.frame[entry.record_date].array},
            index=pks,
        )
    else:
        frame = pd.DataFrame({"record": pd.Series(pd.NaT, index=pks, dtype=UTC_DTYPE)}, index=pks)
        frame["raw"] = frame["record"]
    memo[(source, table)] = frame
    return frame


def _references(snap: TableSnapshot, entry: TableEntry) -> dict[str, str]:
    """The foreign keys the database declares, and the catalog's parent link when the database does not
    declare it (SQLite files and legacy schemas often have none): a row belongs to its parent either way."""
    refs = dict(snap.refs)
    link = entry.subject
    if link.parent is not None and link.foreign_key is not None and columns.ref(link.foreign_key) not in refs:
        refs[columns.FK] = link.parent
    return refs


def tag_records(
    catalog: Catalog, policy: Policy, snapshots: Mapping[str, SourceSnapshot], index: SubjectIndex
) -> Tagged:
    tz = policy.timezone
    last_by_subject = index.last_interaction
    memo: dict[TableId, pd.DataFrame] = {}
    records: dict[TableId, pd.DataFrame] = {}
    tagged: Tagged = {}
    for source, table, entry in catalog.tables():
        snap = snapshots[source][table]
        raw = snap.frame
        out = pd.DataFrame({"pk": raw["pk"].to_numpy()})
        out["subject"] = index.subject_of(source, table).to_numpy()
        out["last_interaction"] = as_utc(pd.Series(last_by_subject.reindex(out["subject"].to_numpy()).array))
        # a row's own interactions count even if the subject index were built without them
        own = interaction_moments(snap, entry.interactions).array
        out["last_interaction"] = pd.concat([out["last_interaction"], pd.Series(own, dtype=UTC_DTYPE)], axis=1).max(
            axis=1
        )
        record = _record(catalog, snapshots, source, table, tz, records)
        record_raw = pd.Series(record["raw"].to_numpy(), index=raw.index).pipe(as_utc)
        out["record"] = record["record"].pipe(as_utc).array
        events = _events(catalog, snapshots, source, table, tz, memo)
        for event in events.columns:
            out[columns.event(event)] = events[event].pipe(as_utc).array
        for name in entry.purposes:
            ends = purpose_deadline(policy.purposes[name], out, record_raw, policy)
            out[columns.deadline(name)] = ends["deadline"].array
            out[columns.waiting(name)] = ends["waiting"].to_numpy()
            out[columns.undated(name)] = (ends["deadline"].isna() & ~ends["waiting"]).to_numpy()
        for column in raw.columns:
            if column.startswith((columns.HAS_PREFIX, columns.REF_PREFIX)) or column == columns.FK:
                out[column] = raw[column].to_numpy()
        tagged[(source, table)] = TaggedTable(out, tuple(entry.purposes), _references(snap, entry))
    return tagged

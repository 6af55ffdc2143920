"""The suites, generated from the catalog: one per table of a snapshot, one per source schema."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from retention.config.catalog import Catalog, TableEntry
from retention.daily.snapshot import SourceSnapshot, TableSnapshot
from retention.quality.checks import (
    COLUMNS_CLASSIFIED,
    COLUMNS_EXIST,
    FOREIGN_KEYS,
    FUTURE,
    IDENTIFIERS,
    KEYS,
    PARSEABLE,
)
from retention.rules import columns
from retention.rules.calendar import end_of_day

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation


IDENTIFIER_MOSTLY = 0.95


CLOCK_SKEW = dt.timedelta(minutes=15)


BOUND_PARAMETER = "future_bound"


BOUND = {"$PARAMETER": BOUND_PARAMETER}
"""The latest believable timestamp is a run parameter, so a suite stays the same from run to run."""


@dataclass
class Suite:
    name: str
    table: str
    frame: pd.DataFrame
    expectations: list[tuple[str, Expectation]]


def future_bound(as_of: dt.date, tz: Any, now: dt.datetime | None = None) -> pd.Timestamp:
    """The latest believable moment: the end of the as-of day, or now when that is later.

    A nightly run for yesterday sees rows written after midnight, and a backfill of a past day sees today's
    rows; neither is an error. A moment after now is, give or take clock skew between servers.
    """
    now_ts = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts.tz_convert("UTC")
    return max(end_of_day(as_of, tz), now_ts) + pd.Timedelta(CLOCK_SKEW)


def _not_in_future_columns(entry: TableEntry) -> list[str]:
    """Interactions and record dates are observations of the past; events may be scheduled ahead."""
    cols = [*entry.interactions, *([entry.record_date] if entry.record_date else [])]
    return list(dict.fromkeys(cols))


def _by_pk(frame: pd.Series, flags: pd.DataFrame, column: str) -> pd.Series:
    """A flag of `flags` aligned to the snapshot's rows by key (a duplicated key takes its first row)."""
    first = flags.drop_duplicates("pk").set_index("pk")[column]
    return frame.map(first)


def _tri(mask: pd.Series, known: pd.Series) -> pd.Series:
    """True/False where `known`, else None: Great Expectations skips None, so only known rows count."""
    out = pd.Series(None, index=mask.index, dtype=object)
    out[known] = mask[known].astype(bool)
    return out


def snapshot_suites(
    catalog: Catalog,
    source: str,
    snapshot: SourceSnapshot,
    flags: Mapping[str, pd.DataFrame | None],
    replaced: Mapping[str, Mapping[str, set[str]]] | None = None,
) -> list[Suite]:
    """One suite per table, generated from the catalog; each expectation is tagged with its check's name.

    `replaced[table][column]` holds the keys (as text) of rows whose identifier the engine itself replaced by a
    pseudonym: those are not e-mails or phone numbers any more, by design, and are not judged.
    """
    import great_expectations as gx

    ex = gx.expectations
    suites = []
    pks = {table: set(snap.frame["pk"].dropna()) for table, snap in snapshot.items()}
    for table, entry in catalog.sources[source].tables.items():
        snap: TableSnapshot = snapshot[table]
        raw = snap.frame
        frame = pd.DataFrame({"pk": raw["pk"]})
        expectations: list[tuple[str, Expectation]] = [
            (KEYS, ex.ExpectColumnValuesToNotBeNull(column="pk")),
            (KEYS, ex.ExpectColumnValuesToBeUnique(column="pk")),
        ]
        for col in _not_in_future_columns(entry):
            frame[col] = raw[col]
            expectations.append((FUTURE, ex.ExpectColumnValuesToBeBetween(column=col, max_value=BOUND)))
        table_flags = flags.get(table)
        if table_flags is not None:
            for col in entry.timestamp_columns():
                name = f"filled:{col}"
                if name not in table_flags.columns:
                    continue
                in_db = _by_pk(raw["pk"], table_flags, name).fillna(0).astype(int) == 1
                frame[f"parsed:{col}"] = _tri(raw[col].notna(), in_db)
                expectations.append(
                    (PARSEABLE, ex.ExpectColumnValuesToBeInSet(column=f"parsed:{col}", value_set=[True]))
                )
            for kind in entry.subject.identifiers:
                name = f"well_formed:{kind.value}"
                verdict = _by_pk(raw["pk"], table_flags, name)
                token = raw[columns.identifier(kind.value)].notna()
                ours = (replaced or {}).get(table, {}).get(entry.subject.identifiers[kind], set())
                judged = verdict.notna() & ~raw["pk"].astype(str).isin(ours)
                frame[name] = _tri((verdict == 1) & token, judged)
                expectations.append(
                    (
                        IDENTIFIERS,
                        ex.ExpectColumnValuesToBeInSet(column=name, value_set=[True], mostly=IDENTIFIER_MOSTLY),
                    )
                )
        links: dict[str, tuple[pd.Series, str]] = {}
        if entry.subject.foreign_key and entry.subject.parent in pks:
            links[entry.subject.foreign_key] = (raw["fk"], entry.subject.parent)
        for ref, parent in snap.refs.items():
            col = columns.ref_column(ref)
            if col not in links and parent in pks:
                links[col] = (raw[ref], parent)
        for col, (values, parent) in links.items():
            frame[f"resolves:{col}"] = _tri(values.isin(pks[parent]), values.notna())
            expectations.append(
                (
                    FOREIGN_KEYS,
                    ex.ExpectColumnValuesToBeInSet(column=f"resolves:{col}", value_set=[True], meta={"parent": parent}),
                )
            )
        suites.append(Suite(f"snapshot.{source}.{table}", table, frame, expectations))
    return suites


def reflect_columns(engine: sa.Engine, tables: Iterable[str]) -> dict[str, list[str]]:
    """The columns of each catalogued table as the database has them (a missing table has none)."""
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    return {t: [c["name"] for c in inspector.get_columns(t)] if t in existing else [] for t in tables}


def schema_suite(catalog: Catalog, source: str, columns: Mapping[str, list[str]]) -> Suite:
    import great_expectations as gx

    ex = gx.expectations
    named = sorted(f"{t}.{c}" for t, entry in catalog.sources[source].tables.items() for c in entry.named_columns())
    present = [f"{t}.{c}" for t, cols in columns.items() for c in cols]
    frame = pd.DataFrame({"column": pd.Series(present, dtype=object)})
    expectations: list[tuple[str, Expectation]] = [
        (COLUMNS_EXIST, ex.ExpectColumnDistinctValuesToContainSet(column="column", value_set=named)),
        (COLUMNS_CLASSIFIED, ex.ExpectColumnValuesToBeInSet(column="column", value_set=named)),
    ]
    return Suite(f"schema.{source}", "all_tables", frame, expectations)

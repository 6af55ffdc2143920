"""Field minimisation: a field is cleared only when no live purpose of its row still needs it, and a field
that is already empty needs no action. Used by the daily plan and by subject requests alike."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from retention.config.catalog import TableEntry
from retention.config.policy import Action
from retention.rules import columns


def fields_needed(entry: TableEntry, purposes: Collection[str]) -> set[str]:
    """The personal-data columns that any of the given purposes of the table needs."""
    return {name for purpose in purposes for name in entry.columns_needed_by(purpose)}


def fields_freed(entry: TableEntry, ended: Collection[str]) -> set[str]:
    """The columns only ended purposes need: what may be cleared once those purposes are over."""
    live = [p for p in entry.purposes if p not in ended]
    return fields_needed(entry, ended) - fields_needed(entry, live)


def only_filled_fields(entries: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Plan entries with each field action narrowed to the fields its row has filled (`has:<column>` of the
    tagged `frame`, by pk); an entry left with no field is no entry. Deletions pass unchanged."""
    if entries.empty:
        return entries
    has = frame.set_index(columns.PK)
    kept_fields = pd.Series([()] * len(entries), index=entries.index, dtype=object)
    updates = entries["action"] != Action.DELETE.value
    kept_fields[~updates] = entries.loc[~updates, "fields"]
    for fields, group in entries[updates].groupby("fields", sort=False):
        if not fields:
            continue
        filled = has.loc[group[columns.PK].to_numpy(), [columns.has(f) for f in fields]].to_numpy(dtype=bool)
        patterns, which = np.unique(filled, axis=0, return_inverse=True)
        narrowed = [tuple(f for f, on in zip(fields, pattern, strict=True) if on) for pattern in patterns]
        kept_fields[group.index] = [narrowed[i] for i in which.ravel().tolist()]
    entries = entries.assign(fields=kept_fields)
    keep = ~updates | (entries["fields"].map(len) > 0)
    return entries[keep].reset_index(drop=True)

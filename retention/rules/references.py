"""References between rows: the foreign-key order of tables, and which rows a kept row still references.

A row that a row staying in the estate still references is pseudonymised, not deleted: deleting it would
break the reference (or be refused by the database). Both the daily plan and a subject request use this rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Protocol, TypeVar

import pandas as pd

from retention.config.catalog import TableId
from retention.rules import columns

T = TypeVar("T", bound=Hashable)


def children_first(tables: Sequence[T], parents_of: Callable[[T], Collection[T]]) -> list[T]:
    """The tables ordered so that each comes after every table whose rows reference it (`parents_of(t)` are
    the tables `t` references). Among free tables the given order holds; a cycle keeps the given order for its
    members, and the database then reports what cannot be done."""
    order: list[T] = []
    remaining = list(tables)
    while remaining:
        for table in remaining:
            if not any(other != table and table in parents_of(other) for other in remaining):
                order.append(table)
                remaining.remove(table)
                break
        else:
            order.extend(remaining)
            break
    return order


class Referencing(Protocol):
    """A tagged table as the reference rule sees it: its frame and its `ref:` columns' referenced tables."""

    @property
    def frame(self) -> pd.DataFrame: ...

    @property
    def refs(self) -> Mapping[str, str]: ...


def referenced_by_staying(
    pks: pd.Series, me: TableId, tables: Mapping[TableId, Referencing], leaving: Mapping[TableId, Collection[object]]
) -> pd.Series:
    """Which of the keys `pks` of table `me` some row of another table of the same source still references
    after the change: rows listed in `leaving[table]` go, every other row (of a table not decided yet, too)
    stays."""
    referenced = pd.Series(False, index=pks.index)
    for other, child in tables.items():
        if other[0] != me[0] or other == me:
            continue
        going = leaving.get(other)
        for ref_column, parent in child.refs.items():
            if parent != me[1]:
                continue
            frame = child.frame
            staying = frame if not going else frame[~frame[columns.PK].isin(list(going))]
            referenced |= pks.isin(set(staying[ref_column].dropna()))
    return referenced

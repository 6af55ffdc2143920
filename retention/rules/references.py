"""References between rows: the foreign-key order of tables, and which rows a kept row still references.

A row that a row staying in the estate still references is pseudonymised, not deleted: deleting it would
break the reference (or be refused by the database). Both the daily plan and a subject request use this rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from typing import TypeVar

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

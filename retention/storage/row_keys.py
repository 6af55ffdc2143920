"""A table's primary key as one value in the engine and as its columns in SQL.

Frames, plans, the ledger and digests need one hashable value per row. A single-column key is its own value
(an int or a string). A composite key (an order line's order and line number, a join table's two ids) is the
JSON text of its parts, e.g. `[17,2]`: one value that sorts and compares, and the same text in the ledger.
Only SQL sees the parts, as a row value `(a, b) IN ((?, ?), ...)`, which every supported database indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from retention.config.database import column_kind
from retention.storage.bulk import in_keys


def encode(parts: Sequence[object]) -> str:
    return json.dumps(list(parts), separators=(",", ":"), ensure_ascii=True)


def decode(text: str) -> tuple[object, ...]:
    return tuple(json.loads(text))


@dataclass(frozen=True)
class RowKey:
    columns: tuple[str, ...]
    integer: bool
    """Whether a single-column key is an integer (the ledger's text is turned back into one)."""

    @classmethod
    def of(cls, table: sa.TableClause, columns: Sequence[str]) -> RowKey:
        return cls(tuple(columns), len(columns) == 1 and column_kind(table.c[columns[0]].type) == "integer")

    @property
    def composite(self) -> bool:
        return len(self.columns) > 1

    @property
    def sql(self) -> str | tuple[str, ...]:
        """The key's column, or its columns, as the bulk functions take them."""
        return self.columns if self.composite else self.columns[0]

    def to_sql(self, keys: Iterable[object]) -> list:
        """Engine values -> what SQL compares: the value itself, or the tuple of a composite key's parts."""
        return [decode(str(k)) for k in keys] if self.composite else list(keys)

    def from_sql(self, parts: Sequence[Sequence[object]]) -> list:
        """The key columns' values as read (one list per column) -> engine values."""
        if not self.composite:
            return list(parts[0])
        return [encode(row) for row in zip(*parts, strict=True)]

    def from_text(self, text: str) -> object:
        """The ledger's text of a key -> the engine value."""
        return int(text) if self.integer else text

    def selected(self, table: sa.TableClause, label: str = "pk") -> list[sa.ColumnElement]:
        """The key's columns for a SELECT, labelled `label` (one column) or `label:0`, `label:1`, ..."""
        if not self.composite:
            return [table.c[self.columns[0]].label(label)]
        return [table.c[c].label(f"{label}:{i}") for i, c in enumerate(self.columns)]

    def joined(self, frame: pd.DataFrame, label: str = "pk") -> pd.DataFrame:
        """A frame read with `selected(label)`, a composite key's part columns replaced by one `label` column."""
        if not self.composite:
            return frame
        parts = [f"{label}:{i}" for i in range(len(self.columns))]
        at = frame.columns.get_loc(parts[0])
        out = frame.drop(columns=parts)
        out.insert(int(at), label, self.from_sql([frame[p].tolist() for p in parts]))
        return out

    def parts(self, keys: Iterable[object]) -> list[tuple[object, ...]]:
        """Engine values -> the key columns' values, one tuple per key (last in a bulk update's rows)."""
        return [decode(str(k)) for k in keys] if self.composite else [(k,) for k in keys]

    def match(self, conn: sa.Connection, table: sa.Table, keys: Iterable[object]) -> sa.ColumnElement[bool]:
        """`key IN (...)` for SQLAlchemy statements, for engine values (one chunk of them)."""
        if not self.composite:
            return in_keys(conn, table.c[self.columns[0]], list(keys))
        return self.within(table, keys)

    def within(self, table: sa.TableClause, keys: Iterable[object]) -> sa.ColumnElement[bool]:
        """`key IN (...)` as a plain SQL list, for a statement built before a connection is at hand."""
        if not self.composite:
            return table.c[self.columns[0]].in_(list(keys))
        return sa.tuple_(*(table.c[c] for c in self.columns)).in_(self.to_sql(keys))

    def of_rows(self, rows: Sequence[Sequence[object]]) -> list:
        """Engine values of rows read whose first columns are the key's."""
        width = len(self.columns)
        return [encode(r[:width]) if self.composite else r[0] for r in rows]

    def order_by(self, table: sa.TableClause) -> list[sa.ColumnElement]:
        return [table.c[c] for c in self.columns]

"""Keyed 64-bit digests of values and rows: what verification compares, never the values themselves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from retention.storage.bulk import fetch_raw
from retention.storage.engines import make_engine
from retention.storage.row_keys import RowKey


def keyed_digests(secret: str, values: Iterable[object]) -> list[int]:
    """64-bit keyed digests of each value's repr, so verification material reveals no value. SipHash-2-4 is a
    keyed pseudorandom function; pandas runs it in C over the whole list, which at a million values costs a
    tenth of hashing them one by one in Python."""
    reprs = np.array(list(map(repr, values)), dtype=object)
    if not len(reprs):
        return []
    return pd.util.hash_array(reprs, hash_key=secret, categorize=False).tolist()


def digest_map(secret: str, pks: Iterable[object], values: Iterable[object]) -> dict[str, int]:
    """pk (as text) -> keyed digest, for the non-null values."""
    present = [(str(pk), v) for pk, v in zip(pks, values, strict=True) if v is not None]
    return dict(zip((pk for pk, _ in present), keyed_digests(secret, (v for _, v in present)), strict=True))


def row_digests(conn: sa.Connection, table: sa.Table, key: RowKey, secret: str, pks: list) -> dict[str, int]:
    """pk -> keyed digest of the whole row as the driver returns it, for the rows with the given keys."""
    names = list(table.columns.keys())
    at = [names.index(c) for c in key.columns]
    rows = [tuple(row) for row in fetch_raw(conn, table, names, key.sql, key.to_sql(pks))]
    return digest_map(secret, key.of_rows([tuple(row[i] for i in at) for row in rows]), rows)


class RowDigests:
    """The whole-row digests of some tables of one source, by key (a `retention.apply.batches.Checksum`). It
    pickles, the engine as its URL, so that a writer process takes them with its own connections."""

    def __init__(self, engine: sa.Engine, secret: str, tables: dict[str, tuple[sa.Table, RowKey]]) -> None:
        self.engine = engine
        self.secret = secret
        self.tables = tables

    def __call__(self, table: str, pks: list) -> dict[str, int]:
        sa_table, key = self.tables[table]
        with self.engine.connect() as conn:
            return row_digests(conn, sa_table, key, self.secret, pks)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "engine": self.engine.url.render_as_string(hide_password=False)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, engine=make_engine(state["engine"]))

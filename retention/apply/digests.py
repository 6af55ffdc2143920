"""Keyed 64-bit digests of values and rows: what verification compares, never the values themselves."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


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

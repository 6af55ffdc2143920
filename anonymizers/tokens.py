"""Keyed pseudonym tokens such as `pz.k1.3fa9c1d2e4b5a6f7`.

The token is a truncated HMAC-SHA-256 of the value under the pseudonymisation key, so it is stable
(joins across tables and databases keep working) but cannot be reversed or recomputed without the key.
The key id is written into the token, so after a key rotation old and new tokens are told apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from anonymizers.base import (
    TEXT_KINDS,
    ColumnSpec,
    Context,
    FunctionAnonymizer,
    Option,
    first_positions,
    is_int,
    is_str,
    output_series,
    seeds_for,
    unit_keys,
)
from anonymizers.keys import Key, hmac_digest, hmac_digests
from anonymizers.locales import Locale
from anonymizers.uniqueness import assign_unique

MIN_TOKEN_HEX = 16
"""64 bits: fewer would make accidental collisions and guessing by enumeration realistic."""
MAX_TOKEN_HEX = 64
DEFAULT_TOKEN_HEX = 32
DEFAULT_PREFIX = "pz"

_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,16}")


def token_header(key: Key, prefix: str = DEFAULT_PREFIX) -> str:
    """The readable part before the hex digits: `pz.k1.`, or `k1.` when the prefix is empty."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"token prefix must be 0-16 letters, digits, '_' or '-', got {prefix!r}")
    return f"{prefix}.{key.key_id}." if prefix else f"{key.key_id}."


def token_hex_length(header: str, length: int, max_length: int | None) -> int:
    """Hex digits to use: `length`, shortened to fit the column, but never below the safe minimum."""
    if not MIN_TOKEN_HEX <= length <= MAX_TOKEN_HEX:
        raise ValueError(f"token length must be {MIN_TOKEN_HEX}-{MAX_TOKEN_HEX} hex characters, got {length}")
    if max_length is not None and len(header) + length > max_length:
        length = max_length - len(header)
        if length < MIN_TOKEN_HEX:
            raise ValueError(
                f"a token needs at least {len(header) + MIN_TOKEN_HEX} characters ({header!r} plus "
                f"{MIN_TOKEN_HEX} hex digits) but the column holds {max_length}; widen the column, use a "
                "shorter prefix (option prefix: '') or key id, or choose another anonymiser"
            )
    return length


def _valid_prefix(value: Any) -> str | None:
    ok = isinstance(value, str) and _PREFIX.fullmatch(value) is not None
    return None if ok else "must be 0-16 letters, digits, '_' or '-'"


def _domain(scope: str, attempt: int = 0) -> str:
    return f"token:{scope}" if attempt == 0 else f"token:{scope}#{attempt}"


def make_token(
    key: Key, value: str, *, length: int = DEFAULT_TOKEN_HEX, prefix: str = DEFAULT_PREFIX, scope: str = ""
) -> str:
    """The token of one value. `scope` separates token spaces that must not be linkable to each other."""
    header = token_header(key, prefix)
    hex_length = token_hex_length(header, length, None)
    return header + hmac_digest(key, _domain(scope), value).hex()[:hex_length]


def token_series(
    values: pd.Series,
    key: Key,
    *,
    length: int = DEFAULT_TOKEN_HEX,
    prefix: str = DEFAULT_PREFIX,
    scope: str = "",
    max_length: int | None = None,
    unique: bool = False,
    taken: frozenset[str] | set[str] = frozenset(),
    seeds: pd.Series | None = None,
) -> pd.Series:
    """Tokens for a Series; nulls stay null, each distinct input is hashed once.

    With `seeds`, the token is made from each row's seed (the subject key) instead of the value, so one
    person gets one token wherever the column appears. With `unique`, rows that would share a token, or
    hit one in `taken`, get a deterministic re-hash of the same length instead.
    """
    header = token_header(key, prefix)
    hex_length = token_hex_length(header, length, max_length)
    mask = values.notna()
    originals = values[mask].astype(object).astype(str).to_numpy(dtype=object)
    sources = seeds_for(values, seeds, mask) if seeds is not None else originals
    units = unit_keys(sources, originals) if unique and seeds is not None else sources
    codes, _ = pd.factorize(units)
    first = first_positions(codes)
    unit_sources = sources[first].tolist()
    tokens = [header + d.hex()[:hex_length] for d in hmac_digests(key, _domain(scope), unit_sources)]
    if unique:
        unit_ids = unit_keys(sources[first], originals[first]).tolist()

        def candidate(i: int, attempt: int) -> str:
            return header + hmac_digest(key, _domain(scope, attempt), unit_ids[i]).hex()[:hex_length]

        tokens = assign_unique(partial(hmac_digests, key, "token-order", unit_ids), tokens, candidate, taken, "token")
    result = np.full(len(values), None, dtype=object)
    result[mask.to_numpy()] = np.asarray(tokens, dtype=object)[codes]
    return output_series(result, values)


def _check(column: ColumnSpec, options: Mapping[str, Any], key_id: str | None, locale: Locale) -> None:
    """Without a key id, assumes a one-character one; the call itself checks again with the real key."""
    key_id = key_id or "k"
    header = f"{options['prefix']}.{key_id}." if options["prefix"] else f"{key_id}."
    token_hex_length(header, options["length"], column.max_length)


def _transform(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
    return token_series(
        values,
        ctx.key,
        length=options["length"],
        prefix=options["prefix"],
        scope=options["scope"],
        max_length=ctx.column.max_length,
        unique=ctx.column.unique,
        taken=ctx.taken,
        seeds=ctx.seeds if options["source"] == "seed" else None,
    )


TOKEN = FunctionAnonymizer(
    name="token",
    kinds=TEXT_KINDS,
    transform=_transform,
    option_specs={
        "length": Option(DEFAULT_TOKEN_HEX, is_int(MIN_TOKEN_HEX, MAX_TOKEN_HEX)),
        "prefix": Option(DEFAULT_PREFIX, _valid_prefix),
        "scope": Option("", is_str(max_len=64)),
        "source": Option("value", is_str(frozenset({"value", "seed"}))),
    },
    extra_check=_check,
    replaces=True,
)

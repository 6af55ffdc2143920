"""Deterministic, realistic Danish surrogates: names, e-mails, phones, street addresses, user names.

A surrogate is chosen from the keyed hash of a seed, normally the row's subject key, so one person gets the
same fake name, e-mail and phone in every table and every database, and the fake e-mail matches the fake
name. All parts of one person come from a single HMAC of the seed. Without the key nobody can tell which
seed gave which surrogate. Surrogates are still personal data in the pseudonymised sense (GDPR Art 4(5)).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    is_str,
    output_series,
    seeds_for,
    unit_keys,
)
from anonymizers.keys import Key, hmac_digest, hmac_digests
from anonymizers.pools import pools
from anonymizers.uniqueness import BASE36, DIGITS, assign_unique, avoid_own, collation_keys, keyed_suffix

PERSON_DOMAIN = "surrogate:person"
DEFAULT_EMAIL_DOMAIN = "anon.invalid"
PHONE_FORMATS = ("international", "international_compact", "national", "compact")
ADDRESS_PARTS = ("street", "full")

_RESERVED_DOMAIN = re.compile(
    r"(?:[a-z0-9-]+\.)*(?:invalid|test|example|localhost)|(?:[a-z0-9-]+\.)*example\.(?:com|net|org)"
)
"""RFC 2606/6761 names: mail to a surrogate address can never reach a real mailbox."""


@dataclass(frozen=True)
class _Person:
    """Per-unit parts of one fake person, all taken from the unit's digest."""

    first: np.ndarray
    last: np.ndarray
    last1: np.ndarray
    first_ascii: np.ndarray
    last_ascii: np.ndarray
    last1_ascii: np.ndarray
    words: np.ndarray

    @classmethod
    def from_digests(cls, digests: list[bytes]) -> _Person:
        words = np.frombuffer(b"".join(digests), dtype=">u4").reshape(-1, 8).astype(np.int64)
        p = pools()
        i_first = words[:, 0] % len(p.first)
        i_last, i_last2 = words[:, 1] % len(p.last), (words[:, 2] & 0xFFFF) % len(p.last)
        style = words[:, 2] >> 29
        other, other_ascii = p.last[i_last2], p.last_ascii[i_last2]
        last1, last1_ascii = p.last[i_last], p.last_ascii[i_last]
        distinct = other != last1
        double = (style == 0) & distinct
        middle = ((style == 1) | (style == 2)) & distinct
        last = np.where(double, last1 + "-" + other, np.where(middle, other + " " + last1, last1))
        last_ascii = np.where(
            double, last1_ascii + "-" + other_ascii, np.where(middle, other_ascii + "." + last1_ascii, last1_ascii)
        )
        return cls(p.first[i_first], last, last1, p.first_ascii[i_first], last_ascii, last1_ascii, words)


class _Renderer:
    """Turns a person into one kind of surrogate within a length limit, with an optional suffix."""

    suffix_alphabet = DIGITS
    """Names and addresses read best with a number; logins use letters too, to fit more in short columns."""

    def __init__(self, person: _Person, limit: int | None, options: Mapping[str, Any]) -> None:
        self.p = person
        self.limit = limit
        self.options = options

    @staticmethod
    def min_length(options: Mapping[str, Any]) -> int:
        return 3

    def base(self) -> list[str]:
        """Every unit's surrogate without a suffix: whole arrays at once, and `render` one by one only for
        the units whose whole value does not fit the column."""
        values = self.whole().tolist()
        if self.limit is not None:
            for i in np.flatnonzero(np.fromiter(map(len, values), np.int64, len(values)) > self.limit).tolist():
                values[i] = self.render(i, "", 0)
        return values

    def whole(self) -> np.ndarray:
        """Each unit's `render(i, "", 0)` where the column's length limit does not cut it."""
        raise NotImplementedError

    def render(self, i: int, suffix: str, extra: int) -> str:
        raise NotImplementedError


def _hard_cut(text: str, room: int) -> str:
    return text[:room].rstrip(" .-,")


class _Name(_Renderer):
    """'Mette Hansen-Lund' or 'Mette Lund Hansen'; to fit, drop the extra surname, abbreviate the first
    name, then the surname, and cut only what still does not fit."""

    def whole(self) -> np.ndarray:
        return self.p.first + " " + self.p.last

    def _fit(self, i: int, room: int | None) -> str:
        first, last, last1 = self.p.first[i], self.p.last[i], self.p.last1[i]
        shapes = (
            f"{first} {last}",
            f"{first} {last1}",
            f"{first[0]}. {last}",
            f"{first[0]}. {last1}",
            f"{first} {last1[0]}.",
            first,
        )
        for option in shapes:
            if room is None or len(option) <= room:
                return option
        assert room is not None  # without a limit the first shape fits
        return _hard_cut(f"{first} {last}", room) or first[:room]

    def render(self, i: int, suffix: str, extra: int) -> str:
        if not suffix:
            return self._fit(i, self.limit)
        if self.limit is not None and self.limit - len(suffix) - 1 < 1:
            return suffix[-self.limit :]
        room = None if self.limit is None else self.limit - len(suffix) - 1
        return f"{self._fit(i, room)} {suffix}"


def _with_tag(stem: str, tag: str, tail: str, limit: int | None) -> str:
    """stem + tag + tail, cutting the stem first and the tag from the left last, never the tail."""
    if limit is None or len(stem) + len(tag) + len(tail) <= limit:
        return stem + tag + tail
    room = limit - len(tag) - len(tail)
    if room >= 1:
        return _hard_cut(stem, room) + tag + tail
    return tag[len(tag) - (limit - len(tail)) :] + tail


class _Email(_Renderer):
    """'mette.hansen-lund4821@anon.invalid': the fake name, four keyed digits, a reserved domain."""

    suffix_alphabet = BASE36

    @staticmethod
    def min_length(options: Mapping[str, Any]) -> int:
        return len(options["domain"]) + 2

    def whole(self) -> np.ndarray:
        tags = _PADDED[4][self.p.words[:, 3] % 10_000]
        return self.p.first_ascii + "." + self.p.last_ascii + tags + ("@" + self.options["domain"])

    def render(self, i: int, suffix: str, extra: int) -> str:
        stem = f"{self.p.first_ascii[i]}.{self.p.last_ascii[i]}"
        tag = f"{self.p.words[i, 3] % 10_000:04d}{suffix}"
        return _with_tag(stem, tag, "@" + self.options["domain"], self.limit)


class _Username(_Renderer):
    """'mettehansen07': ASCII first name and first surname plus two keyed digits."""

    suffix_alphabet = BASE36

    def whole(self) -> np.ndarray:
        stems = _each_distinct(self.p.first_ascii, _login) + _each_distinct(self.p.last1_ascii, _login)
        return stems + _PADDED[2][self.p.words[:, 3] // 10_000 % 100]

    def render(self, i: int, suffix: str, extra: int) -> str:
        stem = _login(f"{self.p.first_ascii[i]}{self.p.last1_ascii[i]}")
        tag = f"{self.p.words[i, 3] // 10_000 % 100:02d}{suffix}"
        return _with_tag(stem, tag, "", self.limit)


def _login(text: str) -> str:
    return text.replace("-", "").replace(".", "")


_PHONE_SHAPES = {  # shape -> (prefix, separator between digit pairs)
    "international": ("+45 ", " "),
    "international_compact": ("+45", ""),
    "national": ("", " "),
    "compact": ("", ""),
}


class _Phone(_Renderer):
    """An 8-digit Danish number (first digit 2-9), in the configured format or the longest that fits."""

    @staticmethod
    def min_length(options: Mapping[str, Any]) -> int:
        return 8

    def _shape(self) -> tuple[str, str]:
        """The configured format, or the first one that fits the column (all numbers have 8 digits)."""
        for shape in (self.options["format"], "international_compact", "national", "compact"):
            prefix, separator = _PHONE_SHAPES[shape]
            if self.limit is None or len(prefix) + 8 + 3 * len(separator) <= self.limit:
                return prefix, separator
        return _PHONE_SHAPES["compact"]

    def whole(self) -> np.ndarray:
        prefix, separator = self._shape()
        number = 20_000_000 + self.p.words[:, 7] % 80_000_000
        pairs = [_PADDED[2][number // 10**k % 100] for k in (6, 4, 2, 0)]
        return prefix + pairs[0] + separator + pairs[1] + separator + pairs[2] + separator + pairs[3]

    def render(self, i: int, suffix: str, extra: int) -> str:
        number = 20_000_000 + (int(self.p.words[i, 7]) if not suffix else extra) % 80_000_000
        digits = f"{number:08d}"
        prefix, separator = self._shape()
        return prefix + separator.join(digits[k : k + 2] for k in range(0, 8, 2))


class _Address(_Renderer):
    """'Vestergade 12' or 'Vestergade 12, 8000 Aarhus C'; the place goes first, then the street is cut."""

    @staticmethod
    def min_length(options: Mapping[str, Any]) -> int:
        return 6

    def whole(self) -> np.ndarray:
        pool, words = pools(), self.p.words
        street = pool.street[words[:, 4] % len(pool.street)] + _NUMBERS[words[:, 5] % 120]
        if self.options["part"] != "full":
            return street
        full = street + ", " + pool.place[words[:, 6] % len(pool.place)]
        if self.limit is None:
            return full
        fits = np.fromiter(map(len, full), np.int64, len(full)) <= self.limit
        return np.where(fits, full, street)

    def render(self, i: int, suffix: str, extra: int) -> str:
        pool = pools()
        words = self.p.words[i]
        street_name = pool.street[words[4] % len(pool.street)]
        number = f" {1 + words[5] % 120}" + (f"-{suffix}" if suffix else "")
        if self.options["part"] == "full":
            full = f"{street_name}{number}, {pool.place[words[6] % len(pool.place)]}"
            if self.limit is None or len(full) <= self.limit:
                return full
        if self.limit is not None and len(number) - 1 >= self.limit:
            return number.strip()[-self.limit :]
        return _with_tag(street_name, number, "", self.limit)


_PADDED = {width: np.array([f"{n:0{width}d}" for n in range(10**width)], dtype=object) for width in (2, 4)}
_NUMBERS = np.array([f" {1 + n}" for n in range(120)], dtype=object)
"""Zero-padded numbers and house numbers, looked up for whole arrays instead of formatted one by one."""


def _each_distinct(values: np.ndarray, function: Callable[[str], str]) -> np.ndarray:
    """`function` of each value, computed once per distinct value."""
    codes, uniques = pd.factorize(values)
    return np.array([function(u) for u in uniques], dtype=object)[codes]


_PERSONS: dict[tuple[str, bytes], dict[str, bytes]] = {}
_PERSONS_KEPT = 100_000


def _person_digests(key: Key, seeds: list[str]) -> list[bytes]:
    """The person digest of each seed. A batch asks for the same people once per surrogate column (name,
    e-mail, phone, ...), so the digests of recent seeds are kept, per key, for the next column."""
    known = _PERSONS.setdefault((key.key_id, key.secret), {})
    missing = [seed for seed in dict.fromkeys(seeds) if seed not in known]
    if missing:
        if len(known) + len(missing) > _PERSONS_KEPT:
            known.clear()
        known.update(zip(missing, hmac_digests(key, PERSON_DOMAIN, missing), strict=True))
    return [known[seed] for seed in seeds]


RENDERERS: dict[str, type[_Renderer]] = {
    "name": _Name,
    "email": _Email,
    "phone": _Phone,
    "address": _Address,
    "username": _Username,
}


def surrogate_series(
    kind: str,
    values: pd.Series,
    key: Key,
    *,
    seeds: pd.Series | None = None,
    max_length: int | None = None,
    unique: bool = False,
    taken: frozenset[str] | set[str] = frozenset(),
    **options: Any,
) -> pd.Series:
    """Surrogates of `kind` for the non-null `values`, chosen by each row's seed (or the value itself).

    With `unique`, every row gets a different value, none of them in `taken`: a row that would share a
    surrogate gets its keyed suffix (' 37', '…482137@…'), or for phones another keyed number. `taken`
    should hold the column's values outside the rows being replaced. A row never gets back the value it had:
    such a unit takes its next candidate in the same way.
    """
    if kind not in RENDERERS:
        raise ValueError(f"unknown surrogate kind {kind!r}; known: {', '.join(RENDERERS)}")
    resolved = SURROGATES[kind].resolve(options)
    _check_fits(kind, max_length, resolved)
    mask = values.notna()
    seed_values = seeds_for(values, seeds, mask)
    originals = values[mask].astype(object).astype(str).to_numpy(dtype=object)
    units = unit_keys(seed_values, originals) if unique else seed_values
    codes, _ = pd.factorize(units)
    first = first_positions(codes)
    unit_seeds = seed_values[first].tolist()
    renderer = RENDERERS[kind](_Person.from_digests(_person_digests(key, unit_seeds)), max_length, resolved)
    chosen = renderer.base()
    own: list[set[str]] = [set() for _ in unit_seeds]
    for code, folded in zip(codes.tolist(), collation_keys(originals.tolist()), strict=True):
        own[code].add(folded)
    unit_ids = units[first].tolist() if unique else unit_seeds

    def candidate(i: int, attempt: int) -> str:
        extra = int.from_bytes(hmac_digest(key, f"surrogate:suffix#{attempt}", unit_ids[i])[:8], "big")
        return renderer.render(i, keyed_suffix(extra, attempt, renderer.suffix_alphabet), extra)

    if unique:
        order = partial(hmac_digests, key, "surrogate:order", unit_ids)
        chosen = assign_unique(order, chosen, candidate, taken, f"{kind} surrogate", own)
    else:
        chosen = avoid_own(chosen, candidate, own)
    result = np.full(len(values), None, dtype=object)
    result[mask.to_numpy()] = np.asarray(chosen, dtype=object)[codes]
    return output_series(result, values)


def _check_fits(kind: str, max_length: int | None, options: Mapping[str, Any]) -> None:
    needed = RENDERERS[kind].min_length(options)
    if max_length is not None and max_length < needed:
        raise ValueError(
            f"a {kind} surrogate needs a column of at least {needed} characters, this one holds {max_length}; "
            "widen the column, or use `clear` or `token` instead"
        )


def _valid_domain(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) <= 64 and _RESERVED_DOMAIN.fullmatch(value) is not None
    return None if ok else "must be a reserved domain (*.invalid, *.test, *.example, example.com/net/org)"


def _make(kind: str) -> FunctionAnonymizer:
    specs: dict[str, Option] = {
        "name": {},
        "email": {"domain": Option(DEFAULT_EMAIL_DOMAIN, _valid_domain)},
        "phone": {"format": Option("international", is_str(frozenset(PHONE_FORMATS)))},
        "address": {"part": Option("street", is_str(frozenset(ADDRESS_PARTS)))},
        "username": {},
    }[kind]

    def transform(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
        return surrogate_series(
            kind,
            values,
            ctx.key,
            seeds=ctx.seeds,
            max_length=ctx.column.max_length,
            unique=ctx.column.unique,
            taken=ctx.taken,
            **options,
        )

    def check(column: ColumnSpec, options: Mapping[str, Any], key_id: str | None) -> None:
        _check_fits(kind, column.max_length, options)

    return FunctionAnonymizer(f"surrogate_{kind}", TEXT_KINDS, transform, specs, check, replaces=True)


SURROGATES = {kind: _make(kind) for kind in RENDERERS}

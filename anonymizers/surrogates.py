"""Deterministic, realistic surrogates: names and name parts, e-mails, phones, street addresses, user names.

A surrogate is chosen from the keyed hash of a seed, normally the row's subject key, so one person gets the
same fake name, e-mail and phone in every table and every database, and the fake e-mail matches the fake
name; a table with first and last names in two columns gets the same person split in two. All parts of one
person come from a single HMAC of the seed. Without the key nobody can tell which seed gave which surrogate.
Surrogates are still personal data in the pseudonymised sense (GDPR Art 4(5)).

The context's locale (`da_DK` unless the engine says otherwise) picks the pools names and places come from,
how addresses and phone numbers are written and how names are spelt in e-mails; the same seed gives the same
Danish surrogates as before locales existed.
"""

from __future__ import annotations

import itertools
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
from anonymizers.locales import DEFAULT_LOCALE, Locale, get_locale
from anonymizers.pools import Pools, pools
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
    def from_digests(cls, digests: list[bytes], p: Pools, locale: Locale) -> _Person:
        words = np.frombuffer(b"".join(digests), dtype=">u4").reshape(-1, 8).astype(np.int64)
        i_first = words[:, 0] % len(p.first)
        i_last, i_last2 = words[:, 1] % len(p.last), (words[:, 2] & 0xFFFF) % len(p.last)
        style = words[:, 2] >> 29
        other, other_ascii = p.last[i_last2], p.last_ascii[i_last2]
        last1, last1_ascii = p.last[i_last], p.last_ascii[i_last]
        distinct = other != last1
        double = (style == 0) & distinct
        middle = ((style == 1) | (style == 2)) & distinct & locale.middle_surnames
        last = np.where(double, last1 + "-" + other, np.where(middle, other + " " + last1, last1))
        last_ascii = np.where(
            double, last1_ascii + "-" + other_ascii, np.where(middle, other_ascii + "." + last1_ascii, last1_ascii)
        )
        return cls(p.first[i_first], last, last1, p.first_ascii[i_first], last_ascii, last1_ascii, words)


class _Renderer:
    """Turns a person into one kind of surrogate within a length limit, with an optional suffix."""

    suffix_alphabet = DIGITS
    """Names and addresses read best with a number; logins use letters too, to fit more in short columns."""

    def __init__(
        self, person: _Person, limit: int | None, options: Mapping[str, Any], locale: Locale, unique: bool
    ) -> None:
        self.p = person
        self.limit = limit
        self.options = options
        self.locale = locale
        self.pool = pools(locale.name)
        self.unique = unique

    @staticmethod
    def min_length(options: Mapping[str, Any], locale: Locale) -> int:
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


class _NamePart(_Renderer):
    """One part of the person `_Name` writes, for tables that keep first and last names in two columns: for
    the same seed, first name + " " + last name is the full name wherever the parts fit their columns.

    A row that would get its own value back gets another name from the pool instead, since a common first
    name meets itself far more often than a full name does; only a unique column takes numbered names.
    """

    def shapes(self, i: int) -> tuple[str, ...]:
        """The unit's part, then shorter forms of it, best first."""
        raise NotImplementedError

    def drawn(self, extra: int) -> str:
        """Another name from the pool, chosen by the keyed number of an attempt."""
        raise NotImplementedError

    def _fit(self, shapes: tuple[str, ...], room: int | None) -> str:
        for option in shapes:
            if room is None or len(option) <= room:
                return option
        assert room is not None  # without a limit the first shape fits
        return _hard_cut(shapes[-1], room) or shapes[-1][:room]

    def render(self, i: int, suffix: str, extra: int) -> str:
        if not suffix:
            return self._fit(self.shapes(i), self.limit)
        if not self.unique:
            return self._fit((self.drawn(extra),), self.limit)
        if self.limit is not None and self.limit - len(suffix) - 1 < 1:
            return suffix[-self.limit :]
        room = None if self.limit is None else self.limit - len(suffix) - 1
        return f"{self._fit(self.shapes(i), room)} {suffix}"


class _FirstName(_NamePart):
    """'Mette' of 'Mette Hansen-Lund'; cut only where the column is shorter than the name."""

    def whole(self) -> np.ndarray:
        return self.p.first

    def shapes(self, i: int) -> tuple[str, ...]:
        return (self.p.first[i],)

    def drawn(self, extra: int) -> str:
        return str(self.pool.first[extra % len(self.pool.first)])


class _LastName(_NamePart):
    """'Hansen-Lund' of 'Mette Hansen-Lund'; to fit, drop the extra surname, then cut."""

    def whole(self) -> np.ndarray:
        return self.p.last

    def shapes(self, i: int) -> tuple[str, ...]:
        return (self.p.last[i], self.p.last1[i])

    def drawn(self, extra: int) -> str:
        return str(self.pool.last[extra % len(self.pool.last)])


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
    def min_length(options: Mapping[str, Any], locale: Locale) -> int:
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


class _Phone(_Renderer):
    """A mobile number of the locale's country (Danish: eight digits, first 2-9), in the configured format
    or the first of the shorter ones that fits: '+45 20 12 34 56', '+44 7123 456789', '+49 171 2345678'."""

    @staticmethod
    def min_length(options: Mapping[str, Any], locale: Locale) -> int:
        return len(locale.phone.trunk_prefix) + locale.phone.digits

    def _shape(self) -> tuple[str, str]:
        """Prefix and group separator of the configured format, or of the first that fits the column."""
        plan = self.locale.phone
        shapes = {
            "international": (f"+{plan.calling_code} ", " "),
            "international_compact": (f"+{plan.calling_code}", ""),
            "national": (plan.trunk_prefix, " "),
            "compact": (plan.trunk_prefix, ""),
        }
        for shape in (self.options["format"], "international_compact", "national", "compact"):
            prefix, separator = shapes[shape]
            if self.limit is None or len(prefix) + plan.digits + (len(plan.groups) - 1) * len(separator) <= self.limit:
                return prefix, separator
        return shapes["compact"]

    def whole(self) -> np.ndarray:
        prefix, separator = self._shape()
        plan = self.locale.phone
        number = plan.first + self.p.words[:, 7] % plan.count
        result = np.full(len(number), prefix, dtype=object)
        rest = plan.digits
        for k, width in enumerate(plan.groups):
            rest -= width
            result = result + (separator if k else "") + _zero_padded(number // 10**rest % 10**width, width)
        return result

    def render(self, i: int, suffix: str, extra: int) -> str:
        plan = self.locale.phone
        number = plan.first + (int(self.p.words[i, 7]) if not suffix else extra) % plan.count
        digits = f"{number:0{plan.digits}d}"
        prefix, separator = self._shape()
        starts = itertools.accumulate(plan.groups, initial=0)
        return prefix + separator.join(digits[a:b] for a, b in itertools.pairwise(starts))


class _Address(_Renderer):
    """'Vestergade 12' or 'Vestergade 12, 8000 Aarhus C' ('12 Baker Street, London SW1A 1AA' in Britain);
    the place goes first, then the street is cut."""

    @staticmethod
    def min_length(options: Mapping[str, Any], locale: Locale) -> int:
        return 6

    def whole(self) -> np.ndarray:
        pool, words = self.pool, self.p.words
        name = pool.street[words[:, 4] % len(pool.street)]
        number = words[:, 5] % 120
        street = _HOUSES[number] + name if self.locale.number_first else name + _NUMBERS[number]
        if self.options["part"] != "full":
            return street
        full = street + ", " + pool.place[words[:, 6] % len(pool.place)]
        if self.limit is None:
            return full
        fits = np.fromiter(map(len, full), np.int64, len(full)) <= self.limit
        return np.where(fits, full, street)

    def render(self, i: int, suffix: str, extra: int) -> str:
        pool = self.pool
        words = self.p.words[i]
        street_name = pool.street[words[4] % len(pool.street)]
        number = f" {1 + words[5] % 120}" + (f"-{suffix}" if suffix else "")
        house = number.strip()
        street = f"{house} {street_name}" if self.locale.number_first else f"{street_name}{number}"
        if self.options["part"] == "full":
            full = f"{street}, {pool.place[words[6] % len(pool.place)]}"
            if self.limit is None or len(full) <= self.limit:
                return full
        if self.limit is not None and len(house) >= self.limit:
            return house[-self.limit :]
        if self.locale.number_first:
            if self.limit is None or len(street) <= self.limit:
                return street
            room = self.limit - len(house) - 1
            return f"{house} {_hard_cut(street_name, room)}".rstrip() if room >= 1 else house
        return _with_tag(street_name, number, "", self.limit)


_PADDED = {width: np.array([f"{n:0{width}d}" for n in range(10**width)], dtype=object) for width in (1, 2, 3, 4)}
_NUMBERS = np.array([f" {1 + n}" for n in range(120)], dtype=object)
_HOUSES = np.array([f"{1 + n} " for n in range(120)], dtype=object)
"""Zero-padded numbers and house numbers, looked up for whole arrays instead of formatted one by one."""


def _zero_padded(numbers: np.ndarray, width: int) -> np.ndarray:
    """Each number below 10**width as `width` zero-padded digits, looked up four digits at a time."""
    low = min(width, 4)
    result = _PADDED[low][numbers % 10**low]
    if width > low:
        result = _zero_padded(numbers // 10**low, width - low) + result
    return result


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
    "first_name": _FirstName,
    "last_name": _LastName,
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
    locale: str = DEFAULT_LOCALE,
    **options: Any,
) -> pd.Series:
    """Surrogates of `kind` for the non-null `values` in `locale`, chosen by each row's seed (or the value itself).

    With `unique`, every row gets a different value, none of them in `taken`: a row that would share a
    surrogate gets its keyed suffix (' 37', '…482137@…'), or for phones another keyed number. `taken`
    should hold the column's values outside the rows being replaced. A row never gets back the value it had:
    such a unit takes its next candidate in the same way (in a first or last name column that need not be
    unique, another name from the pool).
    """
    if kind not in RENDERERS:
        raise ValueError(f"unknown surrogate kind {kind!r}; known: {', '.join(RENDERERS)}")
    spec = get_locale(locale)
    resolved = SURROGATES[kind].resolve(options)
    _check_fits(kind, max_length, resolved, spec)
    mask = values.notna()
    seed_values = seeds_for(values, seeds, mask)
    originals = values[mask].astype(object).astype(str).to_numpy(dtype=object)
    units = unit_keys(seed_values, originals) if unique else seed_values
    codes, _ = pd.factorize(units)
    first = first_positions(codes)
    unit_seeds = seed_values[first].tolist()
    person = _Person.from_digests(_person_digests(key, unit_seeds), pools(spec.name), spec)
    renderer = RENDERERS[kind](person, max_length, resolved, spec, unique)
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


def _check_fits(kind: str, max_length: int | None, options: Mapping[str, Any], locale: Locale) -> None:
    needed = RENDERERS[kind].min_length(options, locale)
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
        "first_name": {},
        "last_name": {},
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
            locale=ctx.locale,
            **options,
        )

    def check(column: ColumnSpec, options: Mapping[str, Any], key_id: str | None, locale: Locale) -> None:
        _check_fits(kind, column.max_length, options, locale)

    return FunctionAnonymizer(f"surrogate_{kind}", TEXT_KINDS, transform, specs, check, replaces=True)


SURROGATES = {kind: _make(kind) for kind in RENDERERS}

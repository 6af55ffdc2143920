"""The uniform interface the engine uses to pick an anonymiser by name from the catalog, and shared helpers.

Every anonymiser is a callable `(values, ctx) -> values` plus a `check(column, options)` that the engine
calls when it loads the catalog, so that a wrong kind, an unknown option or a column too short for the
output stops the run at load time instead of half-way through a database (fail closed).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from anonymizers.keys import Key
from anonymizers.locales import DEFAULT_LOCALE, Locale, get_locale

KINDS = frozenset({"string", "text", "date", "datetime", "integer", "decimal", "boolean"})
TEXT_KINDS = frozenset({"string", "text"})
TEMPORAL_KINDS = frozenset({"date", "datetime"})


@dataclass(frozen=True)
class ColumnSpec:
    """What the engine knows about the target column; anonymisers must produce values it accepts."""

    max_length: int | None = None
    nullable: bool = True
    unique: bool = False
    kind: str = "string"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}; known kinds: {', '.join(sorted(KINDS))}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be positive, got {self.max_length}")


@dataclass(frozen=True, eq=False)
class Context:
    """Everything an anonymiser may use besides the values.

    Seeds, names and taken values are personal data, so they are left out of repr; the key hides its own
    secret; the locale is not personal, so it shows. Equality is identity: comparing Series element-wise is
    not what `==` on a context should do.
    """

    key: Key
    column: ColumnSpec = field(default_factory=ColumnSpec)
    seeds: pd.Series | None = field(default=None, repr=False)
    own_names: pd.Series | None = field(default=None, repr=False)
    taken: frozenset[str] = field(default=frozenset(), repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    locale: str = DEFAULT_LOCALE
    """Which country's surrogates and postcodes: one of `anonymizers.locales.LOCALES`."""

    def __post_init__(self) -> None:
        get_locale(self.locale)
        object.__setattr__(self, "taken", frozenset(self.taken))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def __deepcopy__(self, memo: dict[int, Any]) -> Context:
        """A copy with its own Series and options (a mapping proxy cannot be deep-copied as is)."""
        return Context(
            key=self.key,
            column=self.column,
            seeds=copy.deepcopy(self.seeds, memo),
            own_names=copy.deepcopy(self.own_names, memo),
            taken=self.taken,
            options=copy.deepcopy(dict(self.options), memo),
            locale=self.locale,
        )


@runtime_checkable
class Anonymizer(Protocol):
    """A named value transform the catalog can refer to (read-only: anonymisers are frozen values)."""

    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> frozenset[str]: ...

    @property
    def uses_names(self) -> bool:
        """Whether it reads `ctx.own_names`, which costs the engine a join to find."""
        ...

    @property
    def replaces(self) -> bool:
        """Whether it replaces the whole value, so that the original must be gone from the row afterwards: the
        check after apply then proves it is (generalising and scrubbing may keep some of the value)."""
        ...

    def check(
        self, column: ColumnSpec, options: Mapping[str, Any], key_id: str | None = None, *, locale: str = DEFAULT_LOCALE
    ) -> None:
        """Raise ValueError, naming the problem and the fix, if this anonymiser cannot serve the column.

        `key_id` is the id of the key that will be used, where output length depends on it (tokens); `locale`
        the one the context will name, where output depends on it (phone lengths, postcodes), and an unknown
        locale is an error that names the supported ones.
        """
        ...

    def __call__(self, values: pd.Series, ctx: Context) -> pd.Series: ...


@dataclass(frozen=True)
class Option:
    """One catalog option: its default and a validator that returns an error text or None."""

    default: Any
    validate: Callable[[Any], str | None]


@dataclass(frozen=True)
class FunctionAnonymizer:
    """An anonymiser made of a transform and a feasibility check; both see validated options."""

    name: str
    kinds: frozenset[str]
    transform: Callable[[pd.Series, Context, Mapping[str, Any]], pd.Series] = field(repr=False)
    option_specs: Mapping[str, Option] = field(default_factory=dict, repr=False)
    extra_check: Callable[[ColumnSpec, Mapping[str, Any], str | None, Locale], None] | None = field(
        default=None, repr=False
    )
    uses_names: bool = False
    replaces: bool = False

    def resolve(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Options with defaults filled in; unknown or malformed options raise ValueError."""
        unknown = sorted(set(options) - set(self.option_specs))
        if unknown:
            known = ", ".join(sorted(self.option_specs)) or "none"
            raise ValueError(f"anonymiser {self.name!r}: unknown option(s) {', '.join(unknown)}; known: {known}")
        resolved = {}
        for option_name, spec in self.option_specs.items():
            value = options.get(option_name, spec.default)
            problem = spec.validate(value)
            if problem:
                raise ValueError(f"anonymiser {self.name!r}: option {option_name!r} {problem}, got {value!r}")
            resolved[option_name] = value
        return resolved

    def check(
        self, column: ColumnSpec, options: Mapping[str, Any], key_id: str | None = None, *, locale: str = DEFAULT_LOCALE
    ) -> None:
        """Reject an unknown locale, a column of the wrong kind, bad options, or a column the output cannot fit."""
        spec = get_locale(locale)
        if column.kind not in self.kinds:
            raise ValueError(
                f"anonymiser {self.name!r} cannot be applied to a {column.kind} column; "
                f"it accepts: {', '.join(sorted(self.kinds))}"
            )
        resolved = self.resolve(options)
        if self.extra_check is not None:
            self.extra_check(column, resolved, key_id, spec)

    def __call__(self, values: pd.Series, ctx: Context) -> pd.Series:
        self.check(ctx.column, ctx.options, ctx.key.key_id, locale=ctx.locale)
        for label, aligned in (("seeds", ctx.seeds), ("own_names", ctx.own_names)):
            if aligned is not None and not aligned.index.equals(values.index):
                raise ValueError(f"anonymiser {self.name!r}: ctx.{label} is not aligned with the values")
        return self.transform(values, ctx, self.resolve(ctx.options))


def is_int(low: int, high: int) -> Callable[[Any], str | None]:
    """Validator for an integer option in [low, high]."""

    def validate(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"must be an integer from {low} to {high}"

    return validate


def is_str(choices: frozenset[str] | None = None, max_len: int = 64) -> Callable[[Any], str | None]:
    """Validator for a string option, optionally one of `choices`."""

    def validate(value: Any) -> str | None:
        if not isinstance(value, str) or len(value) > max_len:
            return f"must be a string of at most {max_len} characters"
        if choices is not None and value not in choices:
            return f"must be one of {', '.join(sorted(choices))}"
        return None

    return validate


def any_value(_: Any) -> str | None:
    """Validator that accepts anything (e.g. a constant whose type depends on the column)."""
    return None


def output_series(result: np.ndarray | list[Any], like: pd.Series) -> pd.Series:
    """Wrap results in a Series with the input's index; keep a string input's dtype, else plain objects.

    Keeping the caller's dtype means an `object` column with None stays that way and a pandas `str` column
    stays `str`, so the engine writes back what it read.
    """
    arr = np.asarray(result, dtype=object) if not isinstance(result, np.ndarray) else result
    out = pd.Series(arr, index=like.index, dtype=object, name=like.name)
    if isinstance(like.dtype, pd.StringDtype):
        return out.astype(like.dtype)
    return out


def seeds_for(values: pd.Series, seeds: pd.Series | None, mask: pd.Series) -> np.ndarray:
    """Per-row seed strings for the non-null rows: the subject key, or the value itself where none is given.

    Falling back to the value keeps the output deterministic per value rather than failing, which is the
    right thing for columns that hold no subject (e.g. a free-standing address list).
    """
    own = values[mask].astype(object).astype(str)
    if seeds is None:
        return own.to_numpy(dtype=object)
    picked = seeds[mask].astype(object)
    return picked.where(picked.notna(), own).astype(str).to_numpy(dtype=object)


def unit_keys(seeds: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """One text per (seed, original value) pair, NUL-separated (subject keys hold no NUL): the unit a unique
    column's generated value belongs to, and the identity its keyed candidates are drawn for."""
    return seeds + "\x00" + originals


def first_positions(codes: np.ndarray) -> np.ndarray:
    """Position of each code's first occurrence (pd.factorize numbers codes in that order)."""
    return np.unique(codes, return_index=True)[1]

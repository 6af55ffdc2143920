"""Generalisation: keep a coarser version of a value that statistics still need.

Dates go to the first of their month or year, birth dates to the first day of their ten-year band, IP
addresses to their network (/24 and /48 by default) and postcodes to a region. A value that cannot be read
is cleared rather than passed through: an unparseable "IP address" may be anything.

`postal_region` reads the postcodes of one country: option `country` (DK, GB or DE), by default the country
of the context's locale (da_DK -> DK, en_GB -> GB, de_DE -> DE), so a British table in a Danish estate can
say so in the catalog. What each country becomes:

- DK: '2100', 'DK-2100' or 2100 -> the lowest code of its postal band, '1000' (option `output: label` gives
  '1000-2999 København og omegn' instead); the only country whose bands have names.
- GB: a postcode, with or without its space, in any case -> its outward code ('SW1A 1AA' -> 'SW1A'); an
  outward code alone stays as it is, so generalising twice changes nothing. Text columns only.
- DE: '10115', 'D-10115' or 10115 -> its first two digits and '000' ('10115' -> '10000').

Anything that is not a postcode of the country becomes null (the empty value in a NOT NULL column); an
integer column gets the region as a number (DK and DE).

Error messages name types and columns, never values, because values are personal data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anonymizers.base import (
    TEMPORAL_KINDS,
    TEXT_KINDS,
    ColumnSpec,
    Context,
    FunctionAnonymizer,
    Option,
    is_int,
    is_str,
    output_series,
)
from anonymizers.locales import COUNTRIES, Locale, get_locale

Scalar = dt.date | dt.datetime


def _map_distinct(values: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """Apply a scalar function once per distinct non-null value; nulls stay null."""
    mask = values.notna()
    codes, uniques = pd.factorize(values[mask])
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [fn(u) for u in uniques]
    result = np.full(len(values), None, dtype=object)
    result[mask.to_numpy()] = mapped[codes]
    return output_series(result, values)


def _on_temporal(
    values: pd.Series, numpy_fn: Callable[[np.ndarray], np.ndarray], scalar_fn: Callable[[Scalar], Scalar]
) -> pd.Series:
    """Vectorised for datetime64 columns (time zones kept), per distinct value for date/datetime objects."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        tz = values.dt.tz
        naive = values.dt.tz_localize(None) if tz is not None else values
        arr = naive.to_numpy()
        out = pd.Series(numpy_fn(arr).astype(arr.dtype), index=values.index, name=values.name)
        if tz is not None:
            out = out.dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
        return out
    return _map_distinct(values, lambda v: _scalar_or_iso(v, scalar_fn))


def _scalar_or_iso(value: Any, fn: Callable[[Scalar], Scalar]) -> Any:
    """Dates and datetimes directly; ISO-8601 text (as SQLite may return it) parsed and written back alike."""
    if isinstance(value, dt.date):
        return fn(value)
    if isinstance(value, np.datetime64):
        return fn(pd.Timestamp(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return fn(dt.date.fromisoformat(text)).isoformat()
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("cannot generalise text that is not an ISO-8601 date or datetime") from None
        generalised = fn(parsed)
        assert isinstance(generalised, dt.datetime)
        return generalised.isoformat(sep=" " if " " in text else "T")
    raise TypeError(f"cannot generalise a value of type {type(value).__name__} as a date")


def _midnight(value: Scalar, *, day: int, month: int | None = None, year: int | None = None) -> Scalar:
    """The start of the given day of the value's month (or month and year), keeping the value's type."""
    month = month or value.month
    year = year or value.year
    if isinstance(value, pd.Timestamp):
        return value.replace(year=year, month=month, day=day, hour=0, minute=0, second=0, microsecond=0, nanosecond=0)
    if isinstance(value, dt.datetime):
        return value.replace(year=year, month=month, day=day, hour=0, minute=0, second=0, microsecond=0)
    return value.replace(year=year, month=month, day=day)


def month_start(values: pd.Series) -> pd.Series:
    """Each date or datetime moved to midnight on the first of its month (2024-02-29 -> 2024-02-01)."""
    return _on_temporal(values, lambda a: a.astype("datetime64[M]"), lambda v: _midnight(v, day=1))


def year_start(values: pd.Series) -> pd.Series:
    """Each date or datetime moved to midnight on 1 January of its year."""
    return _on_temporal(values, lambda a: a.astype("datetime64[Y]"), lambda v: _midnight(v, month=1, day=1))


def birth_band(values: pd.Series, years: int = 10) -> pd.Series:
    """Each birth date moved to 1 January of its `years`-wide band (1987-05-02 -> 1980-01-01)."""

    def band_year(year: int) -> int:
        return max(1, year // years * years)

    def numpy_fn(arr: np.ndarray) -> np.ndarray:
        out = np.full(arr.shape, np.datetime64("NaT"), dtype="datetime64[Y]")
        ok = ~np.isnat(arr)
        year = arr[ok].astype("datetime64[Y]").astype(np.int64) + 1970
        out[ok] = (np.maximum(1, year // years * years) - 1970).astype("datetime64[Y]")
        return out

    return _on_temporal(values, numpy_fn, lambda v: _midnight(v, year=band_year(v.year), month=1, day=1))


def ip_network(text: str, prefix_v4: int = 24, prefix_v6: int = 48, notation: str = "cidr") -> str | None:
    """The network of one address ('192.0.2.77' -> '192.0.2.0/24'), or None when it is not an address.

    IPv4-mapped IPv6 addresses are treated as IPv4, so a /48 cannot keep a whole IPv4 address.
    """
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        address = mapped if mapped is not None else ipaddress.IPv6Address(address.packed)
    prefix = prefix_v4 if address.version == 4 else prefix_v6
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network) if notation == "cidr" else str(network.network_address)


def ip_prefix(values: pd.Series, prefix_v4: int = 24, prefix_v6: int = 48, notation: str = "cidr") -> pd.Series:
    """`ip_network` for a Series; unreadable addresses become null."""
    return _map_distinct(values, lambda v: ip_network(str(v), prefix_v4, prefix_v6, notation))


def _max_network_length(prefix_v4: int, prefix_v6: int, notation: str) -> int:
    """Longest text `ip_network` can produce, to check the column at load time."""
    suffix = 4 if notation == "cidr" else 0
    groups = -(-prefix_v6 // 16)
    v6 = 5 * groups - 1 + (2 if groups < 8 else 0) + suffix
    return max(15 + (3 if notation == "cidr" else 0), v6)


@dataclass(frozen=True)
class PostalRegion:
    """A band of Danish postal codes: `code` is its lowest ordinary code, `label` its readable name."""

    low: int
    high: int
    code: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.code}-{self.high:04d} {self.name}"


POSTAL_REGIONS = (
    PostalRegion(800, 2999, "1000", "København og omegn"),
    PostalRegion(3000, 3699, "3000", "Nordsjælland"),
    PostalRegion(3700, 3799, "3700", "Bornholm"),
    PostalRegion(3900, 3999, "3900", "Grønland"),
    PostalRegion(4000, 4999, "4000", "Sjælland og øerne"),
    PostalRegion(5000, 5999, "5000", "Fyn og øerne"),
    PostalRegion(6000, 6999, "6000", "Sønderjylland og Sydvestjylland"),
    PostalRegion(7000, 7999, "7000", "Midt- og Vestjylland"),
    PostalRegion(8000, 8999, "8000", "Østjylland"),
    PostalRegion(9000, 9999, "9000", "Nordjylland"),
)
"""Postal bands, not administrative regions: the first digits of a code follow geography, the 2007
regions do not. 0800-0999 are Copenhagen business codes and join the Copenhagen band; 3800-3899 and
anything else unknown is cleared."""


def postal_region_of(value: Any) -> PostalRegion | None:
    """The band of one postal code ('2100', 'DK-2100', 2100), or None if it is not a Danish code."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        number = int(value)
    else:
        text = str(value).strip().upper().removeprefix("DK").lstrip(" -")
        if len(text) != 4 or not text.isdigit() or not text.isascii():
            return None
        number = int(text)
    return next((r for r in POSTAL_REGIONS if r.low <= number <= r.high), None)


def _danish_code(value: Any) -> str | None:
    region = postal_region_of(value)
    return None if region is None else region.code


_GB_POSTCODE = re.compile(
    r"(?P<outward>[A-PR-UWYZ][0-9][0-9A-HJKPSTUW]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRVWXY]?)"
    r"(?:\s*[0-9][ABD-HJLNP-UW-Z]{2})?"
    r"|(?P<giro>GIR)(?:\s*0AA)?"
)
"""A postcode in the Royal Mail's formats (A9, A99, A9A, AA9, AA99, AA9A and the inward 9AA, with the letters
each position allows), or its outward code alone."""


def outward_code(value: Any) -> str | None:
    """The outward code of a British postcode ('sw1a 1aa' -> 'SW1A'), or None if it is not one."""
    if not isinstance(value, str):
        return None
    match = _GB_POSTCODE.fullmatch(value.strip().upper())
    return None if match is None else match.group("outward") or match.group("giro")


def leitregion(value: Any) -> str | None:
    """A German postcode's first two digits (its Leitregion) and '000' ('10115', 'D-10115' or 10115 ->
    '10000'), or None if it is not one. No German postcode starts with 00."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        text = f"{int(value):05d}" if 0 <= value <= 99_999 else ""
    else:
        text = str(value).strip().upper().removeprefix("DE").removeprefix("D").lstrip(" -")
    if len(text) != 5 or not text.isdigit() or not text.isascii() or text.startswith("00"):
        return None
    return text[:2] + "000"


@dataclass(frozen=True)
class PostalScheme:
    """How one country's postcodes generalise: the region of a code (None if it is not one), and what a
    column must hold to take the result."""

    region: Callable[[Any], str | None]
    longest: int
    numeric: bool


POSTAL_SCHEMES = {
    "DK": PostalScheme(_danish_code, max(len(r.code) for r in POSTAL_REGIONS), numeric=True),
    "GB": PostalScheme(outward_code, 4, numeric=False),
    "DE": PostalScheme(leitregion, 5, numeric=True),
}
"""One scheme per country of `anonymizers.locales`; the tests check that none is missing."""


def postal_problem(country: str, output: str, integer: bool) -> str | None:
    """Why postal_region cannot give `output` for `country` (into an integer column), or None if it can."""
    if country not in POSTAL_SCHEMES:
        return f"postal_region knows no country {country!r}; supported: {', '.join(sorted(POSTAL_SCHEMES))}"
    if output == "label" and country != "DK":
        return f"postal_region output: label names Danish postal bands only; for country {country} use output: code"
    if output == "label" and integer:
        return "postal_region output: label needs a text column; use output: code"
    if integer and not POSTAL_SCHEMES[country].numeric:
        return f"postal_region for country {country} gives codes with letters ('SW1A'), which need a text column"
    return None


def postal_region(values: pd.Series, output: str = "code", as_int: bool = False, country: str = "DK") -> pd.Series:
    """Postcodes of `country` replaced by their region: its code (default, fits the column) or, for Danish
    bands, its label; see the module docstring for each country."""
    problem = postal_problem(country, output, as_int)
    if problem:
        raise ValueError(problem)
    region_of = POSTAL_SCHEMES[country].region

    def convert(value: Any) -> Any:
        if output == "label":
            region = postal_region_of(value)
            return None if region is None else region.label
        code = region_of(value)
        if code is None:
            return None
        return int(code) if as_int else code

    return _map_distinct(values, convert)


def _not_null(values: pd.Series, result: pd.Series, column: ColumnSpec, constant: Any = "") -> pd.Series:
    """Unreadable values were cleared to null; a NOT NULL column gets the empty constant instead."""
    if column.nullable:
        return result
    return result.where(result.notna() | values.isna(), constant)


def _make_temporal(name: str, fn: Callable[[pd.Series], pd.Series]) -> FunctionAnonymizer:
    def transform(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
        return fn(values)

    return FunctionAnonymizer(name, TEMPORAL_KINDS, transform)


def _birth(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
    return birth_band(values, options["years"])


def _ip(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
    result = ip_prefix(values, options["prefix"], options["prefix_v6"], options["notation"])
    return _not_null(values, result, ctx.column)


def _ip_check(column: ColumnSpec, options: Mapping[str, Any], key_id: str | None, locale: Locale) -> None:
    longest = _max_network_length(options["prefix"], options["prefix_v6"], options["notation"])
    if column.max_length is not None and column.max_length < longest:
        raise ValueError(
            f"ip_prefix output can be {longest} characters but the column holds {column.max_length}; "
            "widen the column or use notation: address"
        )


def _postal(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
    as_int = ctx.column.kind == "integer"
    country = options["country"] or get_locale(ctx.locale).country
    result = postal_region(values, options["output"], as_int=as_int, country=country)
    return _not_null(values, result, ctx.column, 0 if as_int else "")


def _postal_check(column: ColumnSpec, options: Mapping[str, Any], key_id: str | None, locale: Locale) -> None:
    country = options["country"] or locale.country
    problem = postal_problem(country, options["output"], column.kind == "integer")
    if problem:
        raise ValueError(problem)
    if options["output"] == "label":
        longest = max(len(r.label) for r in POSTAL_REGIONS)
    else:
        longest = POSTAL_SCHEMES[country].longest
    if column.kind != "integer" and column.max_length is not None and column.max_length < longest:
        raise ValueError(
            f"postal_region output can be {longest} characters but the column holds {column.max_length}; "
            + ("use output: code" if options["output"] == "label" else "widen the column")
        )


def _valid_country(value: Any) -> str | None:
    if value is None or value in COUNTRIES:
        return None
    return f"must be one of {', '.join(sorted(COUNTRIES))} (or left out for the locale's country)"


MONTH = _make_temporal("month", month_start)
YEAR = _make_temporal("year", year_start)
BIRTH_DECADE = FunctionAnonymizer("birth_decade", TEMPORAL_KINDS, _birth, {"years": Option(10, is_int(1, 100))})
IP_PREFIX = FunctionAnonymizer(
    "ip_prefix",
    TEXT_KINDS,
    _ip,
    {
        "prefix": Option(24, is_int(0, 32)),
        "prefix_v6": Option(48, is_int(0, 128)),
        "notation": Option("cidr", is_str(frozenset({"cidr", "address"}))),
    },
    _ip_check,
)
POSTAL_REGION = FunctionAnonymizer(
    "postal_region",
    TEXT_KINDS | {"integer"},
    _postal,
    {"output": Option("code", is_str(frozenset({"code", "label"}))), "country": Option(None, _valid_country)},
    _postal_check,
)

"""Calendar arithmetic in the business time zone on UTC timestamps, vectorised, and the few scalar forms."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from retention.config.periods import Period

UTC_DTYPE = "datetime64[us, UTC]"


def as_utc(values: pd.Series) -> pd.Series:
    """Coerce a Series of instants (already UTC, or all missing of any dtype) to the UTC dtype."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(UTC_DTYPE)
    return pd.to_datetime(values, utc=True, errors="coerce").astype(UTC_DTYPE)


def local_naive(moments: pd.Series, tz: ZoneInfo) -> pd.Series:
    return moments.dt.tz_convert(tz).dt.tz_localize(None)


def from_local_naive(local: pd.Series, tz: ZoneInfo) -> pd.Series:
    aware = local.dt.tz_localize(tz, ambiguous=np.zeros(len(local), dtype=bool), nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC").astype(UTC_DTYPE)


def add_period(moments: pd.Series, period: Period, tz: ZoneInfo) -> pd.Series:
    """Add a period on the local calendar (so a year is a calendar year and DST does not shift the hour)."""
    if moments.empty:
        return moments.astype(UTC_DTYPE)
    local = local_naive(moments, tz)
    shifted = local + pd.DateOffset(**{period.unit: period.amount})
    return from_local_naive(shifted, tz)


def add_period_to(moment: dt.datetime, period: Period, tz: ZoneInfo) -> dt.datetime:
    """One instant plus a period, by the same calendar as every retention deadline (a request's deadline too)."""
    shifted = add_period(pd.Series([pd.Timestamp(utc(moment))], dtype=UTC_DTYPE), period, tz)
    return shifted.iloc[0].to_pydatetime()


def end_of_local_day(moments: pd.Series, tz: ZoneInfo) -> pd.Series:
    """The first instant after the local day of each moment (a date means the whole day)."""
    if moments.empty:
        return moments.astype(UTC_DTYPE)
    local = local_naive(moments, tz).dt.normalize() + pd.DateOffset(days=1)
    return from_local_naive(local, tz)


def end_of_financial_year(moments: pd.Series, month: int, day: int, tz: ZoneInfo) -> pd.Series:
    """The first instant after the financial year that contains each moment's local date."""
    if moments.empty:
        return moments.astype(UTC_DTYPE)
    local = local_naive(moments, tz)
    after_end = (local.dt.month > month) | ((local.dt.month == month) & (local.dt.day > day))
    year = local.dt.year + after_end.astype("Int64")
    ends = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    return from_local_naive(ends + pd.DateOffset(days=1), tz)


def end_of_day(day: dt.date, tz: ZoneInfo) -> pd.Timestamp:
    """The as-of moment of partition `day`: the start of the next local day, in UTC."""
    start_next = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return pd.Timestamp(start_next).tz_convert("UTC")


TIME_CODES = ("%H", "%I", "%M", "%S", "%f", "%X", "%c", "%p", "%T", "%R")


def has_time(fmt: str) -> bool:
    """Whether a text date format carries a time of day; without one a value means its whole local day."""
    return any(code in fmt for code in TIME_CODES)


def parse_text_dates(values: pd.Series, fmt: str) -> pd.Series:
    """Dates stored as text in the catalog's format, as naive local moments; a value that does not parse (or
    is empty) gives no date, which the plan reports instead of guessing."""
    text = values.astype("string").str.strip()
    return pd.to_datetime(text.where(text != ""), format=fmt, errors="coerce")


def to_utc(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Naive timestamps are local business time; aware ones keep their instant. DST gaps shift forward."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(UTC_DTYPE)
    if not pd.api.types.is_datetime64_dtype(values.dtype):
        present = values.dropna()
        if present.map(lambda v: getattr(v, "tzinfo", None) is not None).any():
            return values.map(lambda v: _one_to_utc(v, tz)).astype(UTC_DTYPE)
        values = pd.to_datetime(values, errors="coerce")
    localised = values.dt.tz_localize(tz, ambiguous=np.zeros(len(values), dtype=bool), nonexistent="shift_forward")
    return localised.dt.tz_convert("UTC").astype(UTC_DTYPE)


def _one_to_utc(value: object, tz: ZoneInfo) -> pd.Timestamp:
    if value is None or value is pd.NaT:
        return pd.NaT
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    return stamp.tz_convert("UTC")


def utc(moment: dt.datetime) -> dt.datetime:
    """SQLite and MariaDB hand back naive datetimes for aware columns; what we store is always UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)

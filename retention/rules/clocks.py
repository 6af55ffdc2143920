"""Clocks: when each purpose of a row ends, and whether it has ended at a moment.

A deadline is the first instant after a purpose's period. Deadlines depend only on the data and the policy,
not on the as-of day, so one tagging serves every day's plan and every request.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from retention.config.policy import Clock, Policy, Purpose
from retention.rules import columns
from retention.rules.calendar import add_period, as_utc, end_of_financial_year


def purpose_deadline(purpose: Purpose, rows: pd.DataFrame, record_raw: pd.Series, policy: Policy) -> pd.DataFrame:
    """The deadline of one purpose for each row, and whether the row waits for an event that has not happened.

    `rows` holds `last_interaction`, `record` and the `event:<name>` moments; `record_raw` the record date as
    stored (the financial year is that of the record's local date). An `or_at_event` that has happened ends
    the purpose then if that is earlier; while neither event has happened the row waits.
    """
    tz = policy.timezone
    waiting = pd.Series(False, index=rows.index)
    if purpose.clock is Clock.LAST_INTERACTION:
        start = rows[columns.LAST_INTERACTION]
    elif purpose.clock is Clock.RECORD_DATE:
        start = rows[columns.RECORD]
    elif purpose.clock is Clock.END_OF_FINANCIAL_YEAR:
        fy_month, fy_day = policy.fy_end_month_day
        start = end_of_financial_year(as_utc(record_raw).reset_index(drop=True), fy_month, fy_day, tz)
    else:
        start = rows[columns.event(str(purpose.event))]
        waiting = start.isna()
    deadline = add_period(as_utc(start), purpose.period, tz)
    early_column = columns.event(purpose.or_at_event) if purpose.or_at_event else None
    if early_column is not None and early_column in rows.columns:
        early = rows[early_column]
        deadline = deadline.where(early.isna() | (deadline <= early), early)
        waiting = waiting & early.isna()
    return pd.DataFrame({"deadline": as_utc(deadline).array, "waiting": waiting.to_numpy()}, index=rows.index)


def expired(deadlines: pd.Series, moment: pd.Timestamp) -> pd.Series:
    """Whether each purpose has ended at `moment`: its deadline lies before it. A missing deadline (no usable
    date, or an event still to come) never expires: the row is kept and reported, never guessed.

    The daily plan asks at the end of its as-of day (the first instant of the next day), so a period that
    ends with the as-of day is still live on it; a request asks at the moment it is carried out."""
    return (deadlines < moment).fillna(False).astype(bool)


def last_day_kept(deadline: object, tz: ZoneInfo) -> dt.date | None:
    """The last local day inside the period: the day before the deadline's instant (None without one)."""
    if deadline is None or pd.isna(deadline):
        return None
    return (pd.Timestamp(deadline) - pd.Timedelta(microseconds=1)).tz_convert(tz).date()

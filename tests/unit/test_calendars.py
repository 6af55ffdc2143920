"""The calendars: a request's answer deadline and every retention deadline come from one calendar rule, and
that rule is right at month ends, leap days and daylight-saving changes; the nightly schedule runs the day
that has just ended in business time."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retention.config.periods import Period
from retention.config.requests import RequestSettings
from retention.requests.register import deadline_for
from retention.rules.calendar import UTC_DTYPE, add_period

TZ = ZoneInfo("Europe/Copenhagen")


def expected_local(local: dt.datetime, period: Period) -> dt.datetime:
    """An oracle written from the calendar itself: months and years keep the day, clamped to the month's end;
    days and weeks count days; the local time of day stays."""
    if period.unit in ("days", "weeks"):
        return local + dt.timedelta(days=period.amount * (7 if period.unit == "weeks" else 1))
    months = period.amount * (12 if period.unit == "years" else 1)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    return local.replace(year=year, month=month, day=min(local.day, calendar.monthrange(year, month)[1]))


def retention_deadline(moment: dt.datetime, period: Period) -> dt.datetime:
    return add_period(pd.Series([pd.Timestamp(moment)], dtype=UTC_DTYPE), period, TZ).iloc[0].to_pydatetime()


@pytest.mark.parametrize(
    ("received", "period", "due"),
    [
        ("2026-01-31T10:00", "1 months", "2026-02-28T10:00"),
        ("2028-01-31T10:00", "1 months", "2028-02-29T10:00"),
        ("2028-02-29T09:00", "1 years", "2029-02-28T09:00"),
        ("2026-03-01T12:00", "1 months", "2026-04-01T12:00"),  # across the spring change: same local hour
        ("2026-10-01T12:00", "1 months", "2026-11-01T12:00"),  # across the autumn change
        ("2026-12-31T23:30", "1 months", "2027-01-31T23:30"),
        ("2026-01-29T02:30", "2 months", "2026-03-29T03:00"),  # 02:30 does not exist on 29 March: the gap ends
    ],
)
def test_request_and_retention_deadlines_agree_at_the_edges_of_the_calendar(
    received: str, period: str, due: str
) -> None:
    moment = dt.datetime.fromisoformat(received).replace(tzinfo=TZ).astimezone(dt.UTC)
    p = Period.parse(period)
    request_due = deadline_for(moment, RequestSettings(answer_within=p), TZ)
    assert request_due == retention_deadline(moment, p)
    assert request_due.astimezone(TZ).replace(tzinfo=None) == dt.datetime.fromisoformat(due)


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2060, 12, 31), timezones=st.just(dt.UTC)
    ),
    amount=st.integers(min_value=1, max_value=60),
    unit=st.sampled_from(["days", "weeks", "months", "years"]),
)
def test_both_calendars_follow_the_local_calendar(moment: dt.datetime, amount: int, unit: str) -> None:
    period = Period(amount, unit)
    moment = moment.replace(microsecond=0)
    request_due = deadline_for(moment, RequestSettings(answer_within=period), TZ)
    assert request_due == retention_deadline(moment, period)
    wanted = expected_local(moment.astimezone(TZ).replace(tzinfo=None), period)
    got = request_due.astimezone(TZ).replace(tzinfo=None)
    # a local time that the clock skips (spring change) becomes the first instant after the gap, never earlier
    assert got == wanted or dt.timedelta(0) < got - wanted <= dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("fires_utc", "day"),
    [
        ("2026-06-14T22:30", "2026-06-14"),  # 00:30 summer time on the 15th
        ("2026-01-14T23:30", "2026-01-14"),  # 00:30 winter time on the 15th
        ("2026-03-28T23:30", "2026-03-28"),  # the night the clocks go forward
        ("2026-10-24T22:30", "2026-10-24"),  # the night they go back
        ("2027-01-01T00:30", "2026-12-31"),  # a year ends
    ],
)
def test_the_nightly_schedule_runs_the_day_that_has_just_ended(fires_utc: str, day: str) -> None:
    from pipelines.definitions import defs

    repository = defs.get_repository_def()
    schedule = repository.get_schedule_def("nightly_retention")
    when = dt.datetime.fromisoformat(fires_utc).replace(tzinfo=dt.UTC)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=repository
        ) as context,
    ):
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == [day]
    assert requests[0].run_key == day

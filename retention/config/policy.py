"""The retention policy (config/policy.yaml): purposes, their legal basis, clocks, periods and actions."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from retention.config.base import Strict
from retention.config.periods import Period


class Clock(StrEnum):
    LAST_INTERACTION = "last_interaction"
    RECORD_DATE = "record_date"
    END_OF_FINANCIAL_YEAR = "end_of_financial_year"
    EVENT = "event"


class Action(StrEnum):
    DELETE = "delete"
    PSEUDONYMISE = "pseudonymise"
    CLEAR = "clear"


class Purpose(Strict):
    data: str = Field(description="what data the purpose covers, in words, for the retention schedule")
    legal_basis: str
    clock: Clock
    event: str | None = Field(default=None, description="event name when clock is 'event'")
    or_at_event: str | None = Field(default=None, description="an event that ends the purpose earlier")
    period: Period
    action: Action
    reason: str

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: object) -> Period:
        return Period.parse(value)

    @model_validator(mode="after")
    def _event_clock(self) -> Purpose:
        if self.clock is Clock.EVENT and not self.event:
            raise ValueError("clock 'event' needs 'event: <name>' naming the event column set in the catalog")
        if self.clock is not Clock.EVENT and self.event:
            raise ValueError(f"'event' is only used with clock 'event', but clock is {self.clock.value!r}")
        return self


class BookkeepingHold(Strict):
    purpose: str = Field(description="the purpose whose live period holds the rows")
    tables: list[str] = Field(description="'source.table' entries whose rows are vouchers")

    @field_validator("tables")
    @classmethod
    def _qualified(cls, tables: list[str]) -> list[str]:
        for entry in tables:
            if entry.count(".") != 1:
                raise ValueError(f"table {entry!r} must be written as 'source.table', e.g. 'enrolment.invoices'")
        return tables


class Guard(Strict):
    max_share: float = Field(gt=0, le=1, description="largest share of a table one run may touch unconfirmed")
    min_rows: int = Field(default=50, ge=0, description="tables smaller than this are not guarded")


class Language(StrEnum):
    DANISH = "da"
    ENGLISH = "en"


class Authority(Strict):
    name: str = Field(description="the supervisory authority a person may complain to (Art 77), e.g. Datatilsynet")
    address: str | None = None
    url: str | None = None

    def describe(self) -> str:
        """Name, address and web address, as a person and the report are told."""
        return ", ".join([self.name, *(p for p in (self.address, self.url) if p)])


class Controller(Strict):
    """Who is responsible for the processing, named to the people and the authority (Art 13(1)(a)-(b), 30(1)(a))."""

    name: str
    address: str | None = None
    contact: str = Field(description="where a person sends requests about their data, e.g. an e-mail address")
    dpo: str | None = Field(default=None, description="the data protection officer's contact, where there is one")
    authority: Authority
    language: Language = Field(
        default=Language.ENGLISH, description="the language of what a person reads: da (Danish) or en (English)"
    )


EARLIEST_FIRST_DAY = dt.date(2000, 1, 1)
"""The earliest as-of day the engine plans for, as the CLI's `--as-of` accepts."""


class Policy(Strict):
    financial_year_end: str = Field(description="month-day the financial year ends, e.g. '12-31' or '06-30'")
    business_timezone: str
    first_partition_day: dt.date = Field(
        default=dt.date(2024, 1, 1),
        description="the first as-of day the daily job has a partition for; a run covers everything due up to "
        "its day, so this only bounds how far back a backfill can reconstruct history",
    )
    guard: Guard
    bookkeeping_hold: BookkeepingHold
    purposes: dict[str, Purpose]
    controller: Controller | None = Field(
        default=None, description="named in access exports; without it an export names no controller or authority"
    )
    automated_decisions: str | None = Field(
        default=None,
        description="whether decisions are made about people by automated means alone, including profiling, and "
        "their logic (Art 15(1)(h)); told in every access export",
    )

    @field_validator("first_partition_day", mode="before")
    @classmethod
    def _first_day(cls, value: object) -> dt.date:
        day: dt.date | None = None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            day = value
        elif isinstance(value, str):
            try:
                day = dt.date.fromisoformat(value.strip()) if len(value.strip()) == 10 else None
            except ValueError:
                day = None
        if day is None:
            raise ValueError(f"{value!r} is not a day; write it as YYYY-MM-DD, e.g. 2024-01-01")
        if day < EARLIEST_FIRST_DAY:
            raise ValueError(f"{day} is before {EARLIEST_FIRST_DAY}; give a day from {EARLIEST_FIRST_DAY} on")
        if day > dt.date.today():
            raise ValueError(
                f"{day} is after today, so the daily job would have no partition to run; give today or an earlier day"
            )
        return day

    @field_validator("financial_year_end")
    @classmethod
    def _fy_end(cls, value: str) -> str:
        match = re.fullmatch(r"(\d\d)-(\d\d)", value)
        days_in_month = {
            1: 31,
            2: 28,
            3: 31,
            4: 30,
            5: 31,
            6: 30,
            7: 31,
            8: 31,
            9: 30,
            10: 31,
            11: 30,
            12: 31,
        }
        if (
            not match
            or not (1 <= int(match.group(1)) <= 12)
            or not (1 <= int(match.group(2)) <= days_in_month[int(match.group(1))])
        ):
            raise ValueError(f"{value!r} is not a month-day; write it as MM-DD, e.g. '12-31' or '06-30'")
        return value

    @field_validator("business_timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name; use an IANA name like 'Europe/Copenhagen'") from None
        return value

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)

    @property
    def fy_end_month_day(self) -> tuple[int, int]:
        month, day = self.financial_year_end.split("-")
        return int(month), int(day)

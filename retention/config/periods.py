"""Retention periods written the way people write them ("3 years", "13 months") and read strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
    "year": "years",
    "years": "years",
}


_PATTERN = re.compile(r"^\s*([0-9]+)\s+([A-Za-z]+)\s*$")


PERIOD_FIX = "write a whole number and a unit: days, weeks, months or years, e.g. '5 years' or '13 months'"


MAX_PERIOD_YEARS = 1000
"""The longest period: deadlines are computed on a calendar that ends with the year 9999 (Python's dates,
`retention.rules.calendar.add_period`), so a period must leave room after any date an estate holds."""

_PER_YEAR = {"days": 365.2425, "weeks": 365.2425 / 7, "months": 12, "years": 1}

MAX_PERIOD_FIX = (
    f"at most {MAX_PERIOD_YEARS} years ({MAX_PERIOD_YEARS * 12} months, "
    f"{int(MAX_PERIOD_YEARS * _PER_YEAR['weeks'])} weeks or {int(MAX_PERIOD_YEARS * _PER_YEAR['days'])} days)"
)


@dataclass(frozen=True)
class Period:
    amount: int
    unit: str

    @classmethod
    def parse(cls, text: object) -> Period:
        if isinstance(text, Period):
            return text
        if not isinstance(text, str):
            raise ValueError(f"period must be text like '5 years', got {text!r}; {PERIOD_FIX}")
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"period {text!r} is not understood; {PERIOD_FIX}")
        unit = _UNITS.get(match.group(2).lower())
        if unit is None:
            raise ValueError(f"period {text!r} has an unknown unit {match.group(2)!r}; {PERIOD_FIX}")
        digits = match.group(1).lstrip("0") or "0"
        amount = int(digits) if len(digits) <= 12 else 10**12  # more digits than any period: beyond, said below
        if amount / _PER_YEAR[unit] > MAX_PERIOD_YEARS:
            raise ValueError(
                f"period {text!r} reaches beyond the calendar's last date (the year 9999); {MAX_PERIOD_FIX}"
            )
        return cls(amount, unit)

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {unit}"

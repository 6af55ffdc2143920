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


_PATTERN = re.compile(r"^\s*(\d+)\s+([A-Za-z]+)\s*$")


PERIOD_FIX = "write a whole number and a unit: days, weeks, months or years, e.g. '5 years' or '13 months'"


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
        return cls(int(match.group(1)), unit)

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {unit}"

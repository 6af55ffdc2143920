"""The column names of the value-free frames that flow from snapshot to plan, in one place.

A snapshot frame holds `pk`, `fk` (the subject link's parent key), `ref:<column>` for each declared foreign
key, `id:<kind>` identifier tokens, `has:<column>` flags and one UTC timestamp per dated column. Tagging adds
`subject`, `last_interaction`, `record`, `event:<name>`, and per purpose `deadline:`, `waiting:` and
`undated:`. Every module names these columns through the functions here.
"""

from __future__ import annotations

PK = "pk"
FK = "fk"
SUBJECT = "subject"
LAST_INTERACTION = "last_interaction"
RECORD = "record"
REF_PREFIX = "ref:"
HAS_PREFIX = "has:"


def deadline(purpose: str) -> str:
    """The first instant after the purpose's period (NaT when it has no usable date or waits for an event)."""
    return f"deadline:{purpose}"


def waiting(purpose: str) -> str:
    """True where the purpose's clock is an event that has not happened yet: no deadline, nothing is guessed."""
    return f"waiting:{purpose}"


def undated(purpose: str) -> str:
    """True where the purpose's clock has no usable date: the row is kept and reported."""
    return f"undated:{purpose}"


def has(column: str) -> str:
    """True where the personal-data column is filled (decided in the source; the value never leaves it)."""
    return f"{HAS_PREFIX}{column}"


def ref(column: str) -> str:
    """The value of a declared foreign-key column: the referenced row's key."""
    return f"{REF_PREFIX}{column}"


def ref_column(name: str) -> str:
    """The foreign-key column a `ref:` frame column holds."""
    return name.removeprefix(REF_PREFIX)


def identifier(kind: str) -> str:
    """The keyed token of an identifier of the given kind (e-mail, phone, customer number)."""
    return f"id:{kind}"


def event(name: str) -> str:
    """The moment a named event happened (own or inherited from the parent row)."""
    return f"event:{name}"

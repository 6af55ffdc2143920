"""The estate catalog (config/catalog.yaml): sources, tables, how rows link to people, and what is personal."""

from __future__ import annotations

import datetime as dt
import os
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from anonymizers.locales import DEFAULT_LOCALE, get_locale
from retention.config.base import Strict
from retention.config.settings import var_dir


def expand_var(url: str | None) -> str | None:
    """Default URLs may say `{var}` for the runtime-state folder (RETENTION_VAR, default var/)."""
    return url.replace("{var}", str(var_dir())) if url else url


def _round_trips(fmt: str) -> bool:
    """Whether a strftime format writes a moment it reads back (so it names at least year, month and day)."""
    sample = dt.datetime(2001, 11, 23, 14, 35, 56)
    try:
        back = dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError:
        return False
    return back.date() == sample.date()


class IdentifierKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_NUMBER = "customer_number"


class Strength(StrEnum):
    """How surely an identifier names one person: a strong one joins rows outright, a weak one (a phone that
    colleagues or a family share) only where it joins no two people whose strong identifiers differ."""

    STRONG = "strong"
    WEAK = "weak"


DEFAULT_STRENGTH = {
    IdentifierKind.EMAIL: Strength.STRONG,
    IdentifierKind.CUSTOMER_NUMBER: Strength.STRONG,
    IdentifierKind.PHONE: Strength.WEAK,
}


class Category(StrEnum):
    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"
    POSTAL_CODE = "postal_code"
    BIRTH_DATE = "birth_date"
    IDENTIFIER = "identifier"
    USERNAME = "username"
    CREDENTIAL = "credential"
    IP_ADDRESS = "ip_address"
    DEVICE = "device"
    FREE_TEXT = "free_text"
    HEALTH = "health"
    EMPLOYMENT = "employment"
    FINANCIAL = "financial"
    PROFILE = "profile"
    MEDIA = "media"
    URL = "url"


# Categories whose raw values must never reach Dagster storage, logs, the ledger or reports.
RAW_FORBIDDEN = frozenset(Category) - {Category.POSTAL_CODE}


class ColumnEntry(Strict):
    category: Category
    anonymizer: str
    purposes: list[str] | None = Field(
        default=None, description="purposes that still need this column; default: all purposes of the table"
    )
    options: dict[str, Any] = Field(default_factory=dict)


class SubjectLink(Strict):
    identifiers: dict[IdentifierKind, str] = Field(default_factory=dict)
    parent: str | None = None
    foreign_key: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SubjectLink:
        if bool(self.identifiers) == bool(self.parent):
            raise ValueError(
                "give either 'identifiers' (kind: column) or 'parent' with 'foreign_key', exactly one of them"
            )
        if self.parent and not self.foreign_key:
            raise ValueError(f"'parent: {self.parent}' needs 'foreign_key: <column referencing the parent's key>'")
        if self.foreign_key and not self.parent:
            raise ValueError("'foreign_key' needs 'parent: <table>' naming the table it references")
        return self


class TableEntry(Strict):
    primary_key: list[str] = Field(min_length=1)
    subject: SubjectLink
    interactions: list[str] = Field(default_factory=list)
    record_date: str | None = None
    events: dict[str, str] = Field(default_factory=dict)
    inherit_record_date: bool = Field(
        default=False, description="a child without a date of its own takes its parent row's record date"
    )
    date_formats: dict[str, str] = Field(
        default_factory=dict,
        description="dated columns stored as text, with their strftime format (e.g. '%Y-%m-%d'); "
        "a value that does not parse gives the row no date, reported, never guessed",
    )
    purposes: list[str] = Field(min_length=1)
    columns: dict[str, ColumnEntry] = Field(default_factory=dict)
    not_personal: list[str] = Field(default_factory=list)
    obtained_from: str | None = Field(
        default=None,
        description="where the table's data comes from when not from the person (Art 14(2)(f), 15(1)(g)), e.g. "
        "'a jobcenter enrols unemployed participants'; told in access exports",
    )
    changed_at: str | None = Field(
        default=None,
        description="a timestamp column the application sets on every insert and update (e.g. updated_at): a "
        "request then reads the rows the subject index names and those changed since its snapshot, not the "
        "whole table",
    )

    @model_validator(mode="after")
    def _dates(self) -> TableEntry:
        dated = set(self.timestamp_columns())
        for column, fmt in self.date_formats.items():
            if column not in dated:
                raise ValueError(
                    f"date_formats names {column!r}, which is not one of the table's interactions, record_date or "
                    f"events ({', '.join(sorted(dated)) or 'none'}); name a dated column or remove the entry"
                )
            if not _round_trips(fmt):
                raise ValueError(
                    f"date_formats.{column}: {fmt!r} is not a date format that reads back what it writes; use "
                    "strftime codes with at least year, month and day, e.g. '%Y-%m-%d' or '%d.%m.%Y %H:%M'"
                )
        if self.inherit_record_date:
            if self.record_date:
                raise ValueError("give either 'record_date' or 'inherit_record_date: true', not both")
            if not self.subject.parent:
                raise ValueError("'inherit_record_date: true' needs 'subject: {parent: ..., foreign_key: ...}'")
        if self.changed_at and not self.subject.identifiers:
            raise ValueError(
                f"'changed_at: {self.changed_at}' is only used by tables with identifiers (their rows are found "
                "through the subject index); a child table is read by its foreign key: remove it"
            )
        return self

    @property
    def pk(self) -> str:
        """The key column of a table with a single-column key: a parent's, which its children's foreign key
        names (composite keys are handled as one value by `retention.storage.row_keys`)."""
        if len(self.primary_key) != 1:
            raise ValueError(f"the primary key {self.primary_key} has several columns; use RowKey")
        return self.primary_key[0]

    def timestamp_columns(self) -> list[str]:
        cols = [*self.interactions, *self.events.values()]
        if self.record_date:
            cols.append(self.record_date)
        return list(dict.fromkeys(cols))

    def named_columns(self) -> list[str]:
        """Every column the catalog names for the table: key, link, timestamps, change column, personal and
        not-personal columns (any other column of the table is unclassified)."""
        cols = [
            *self.primary_key,
            *([self.subject.foreign_key] if self.subject.foreign_key else []),
            *self.subject.identifiers.values(),
            *self.timestamp_columns(),
            *([self.changed_at] if self.changed_at else []),
            *self.columns,
            *self.not_personal,
        ]
        return list(dict.fromkeys(cols))

    def columns_needed_by(self, purpose: str) -> list[str]:
        return [name for name, col in self.columns.items() if purpose in (col.purposes or self.purposes)]


def _known_locale(name: str | None) -> str | None:
    if name is not None:
        get_locale(name)
    return name


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,7}")
_TAG_PART = re.compile(r"[A-Za-z0-9_.-]{1,63}")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.-]{0,63}")


def _owner(owner: str | None) -> str | None:
    """The owners Dagster accepts on an asset: an e-mail address, or a team as 'team:<name>'."""
    if owner is None or _EMAIL.fullmatch(owner) or (owner.startswith("team:") and len(owner) > len("team:")):
        return owner
    raise ValueError(
        f"{owner!r} is not an owner Dagster accepts; write an e-mail address (e.g. 'dpo@example.com') or a team "
        "as 'team:<name>' (e.g. 'team:data-platform')"
    )


def _tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags as Dagster accepts them on an asset; its own 'dagster/' tags are set by the engine, not the catalog."""
    for key, value in tags.items():
        parts = key.split("/")
        reserved = len(parts) == 2 and parts[0] == "dagster"
        if len(parts) > 2 or reserved or not all(_TAG_PART.fullmatch(p) for p in parts):
            raise ValueError(
                f"the tag key {key!r} is not one Dagster accepts; use letters, digits, '_', '-' and '.' (at most 63), "
                "optionally after one 'namespace/' (not 'dagster/'), e.g. 'domain' or 'acme/cost_centre'"
            )
        if not _TAG_VALUE.fullmatch(value):
            raise ValueError(
                f"the value of tag {key!r} is not one Dagster accepts; write text of letters, digits, '_', '-' and "
                "'.' (at most 63; empty is allowed), e.g. 'marketing' or 'tier-1'"
            )
    return tags


class SourceEntry(Strict):
    url_env: str = Field(description="environment variable holding the SQLAlchemy URL")
    locale: Annotated[str | None, AfterValidator(_known_locale)] = Field(
        default=None, description="the source's country and language, if not the estate's (e.g. de_DE)"
    )
    default_url: str | None = Field(default=None, description="used when the variable is unset (the demo)")
    tables: dict[str, TableEntry] = Field(min_length=1)
    not_personal_tables: list[str] = Field(
        default_factory=list, description="tables reviewed and found to hold no personal data at all (a catalogue)"
    )
    owner: Annotated[str | None, AfterValidator(_owner)] = Field(
        default=None, description="who answers for the source's assets in Dagster: an e-mail address or 'team:<name>'"
    )
    tags: Annotated[dict[str, str], AfterValidator(_tags)] = Field(
        default_factory=dict, description="Dagster tags of the source's assets (e.g. {domain: marketing})"
    )

    @model_validator(mode="after")
    def _apart(self) -> SourceEntry:
        both = sorted(set(self.tables) & set(self.not_personal_tables))
        if both:
            raise ValueError(f"{', '.join(both)}: listed under both 'tables' and 'not_personal_tables'; keep one")
        return self

    def url(self) -> str | None:
        return os.environ.get(self.url_env) or expand_var(self.default_url)


class Catalog(Strict):
    sources: dict[str, SourceEntry] = Field(min_length=1)
    locale: Annotated[str, AfterValidator(_known_locale)] = Field(
        default=DEFAULT_LOCALE,
        description="country and language of the estate: surrogate pools, phone numbers without a country code, "
        "postcodes (da_DK, en_GB, de_DE)",
    )
    control_url_env: str = "RETENTION_CONTROL_URL"
    control_default_url: str | None = None
    identifier_strength: dict[IdentifierKind, Strength] = Field(
        default_factory=dict, description="per identifier kind, strong or weak (default: phone weak, others strong)"
    )

    def locale_of(self, source: str) -> str:
        return self.sources[source].locale or self.locale

    def region_of(self, source: str) -> str:
        """The country a phone number of the source without its country code is read in."""
        return get_locale(self.locale_of(source)).country

    def regions(self) -> list[str]:
        """Every source's phone region, the estate's first: a request's phone is read in each of them."""
        return list(dict.fromkeys([get_locale(self.locale).country, *(self.region_of(s) for s in self.sources)]))

    def weak_identifiers(self) -> list[IdentifierKind]:
        strength = {**DEFAULT_STRENGTH, **self.identifier_strength}
        return [kind for kind in IdentifierKind if strength[kind] is Strength.WEAK]

    def tables(self) -> list[tuple[str, str, TableEntry]]:
        return [(s, t, entry) for s, src in self.sources.items() for t, entry in src.tables.items()]

    def table(self, source: str, table: str) -> TableEntry:
        return self.sources[source].tables[table]

    def parent_chain(self, source: str, table: str) -> list[str]:
        """The table and its ancestors along parent links, nearest first (stops at a cycle or unknown table)."""
        chain = [table]
        tables = self.sources[source].tables
        parent = tables[table].subject.parent
        while parent is not None and parent in tables and parent not in chain:
            chain.append(parent)
            parent = tables[parent].subject.parent
        return chain

    def record_date_of(self, source: str, table: str) -> tuple[str, str] | None:
        """(table, column) of the record date a row has: its own, or with `inherit_record_date` its parent's."""
        tables = self.sources[source].tables
        for name in self.parent_chain(source, table):
            entry = tables[name]
            if entry.record_date:
                return name, entry.record_date
            if not entry.inherit_record_date:
                return None
        return None

    def events_of(self, source: str, table: str) -> dict[str, tuple[str, str]]:
        """Events a row can see: its own, then those of its ancestors (name -> (table, column))."""
        events: dict[str, tuple[str, str]] = {}
        for name in self.parent_chain(source, table):
            for event, column in self.sources[source].tables[name].events.items():
                events.setdefault(event, (name, column))
        return events

    def control_url(self) -> str | None:
        return os.environ.get(self.control_url_env) or expand_var(self.control_default_url)


TableId = tuple[str, str]

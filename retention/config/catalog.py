"""The estate catalog (config/catalog.yaml): sources, tables, how rows link to people, and what is personal."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from retention.config.base import Strict
from retention.config.settings import var_dir


def expand_var(url: str | None) -> str | None:
    """Default URLs may say `{var}` for the runtime-state folder (RETENTION_VAR, default var/)."""
    return url.replace("{var}", str(var_dir())) if url else url


class IdentifierKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_NUMBER = "customer_number"


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
    purposes: list[str] = Field(min_length=1)
    columns: dict[str, ColumnEntry] = Field(default_factory=dict)
    not_personal: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _single_key(self) -> TableEntry:
        if len(self.primary_key) != 1:
            raise ValueError("composite primary keys are not supported yet; name the single key column")
        return self

    @property
    def pk(self) -> str:
        return self.primary_key[0]

    def timestamp_columns(self) -> list[str]:
        cols = [*self.interactions, *self.events.values()]
        if self.record_date:
            cols.append(self.record_date)
        return list(dict.fromkeys(cols))

    def columns_needed_by(self, purpose: str) -> list[str]:
        return [name for name, col in self.columns.items() if purpose in (col.purposes or self.purposes)]


class SourceEntry(Strict):
    url_env: str = Field(description="environment variable holding the SQLAlchemy URL")
    default_url: str | None = Field(default=None, description="used when the variable is unset (the demo)")
    tables: dict[str, TableEntry] = Field(min_length=1)

    def url(self) -> str | None:
        return os.environ.get(self.url_env) or expand_var(self.default_url)


class Catalog(Strict):
    sources: dict[str, SourceEntry] = Field(min_length=1)
    control_url_env: str = "RETENTION_CONTROL_URL"
    control_default_url: str | None = None

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

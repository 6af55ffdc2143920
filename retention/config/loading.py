"""Loads the catalog and the policy and checks them against each other.

Every mistake becomes a `Problem` naming the file, the entry and the fix; loading fails closed with all of
them in one `ConfigError`, so a typo never reaches a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import anonymizers
from retention.config.catalog import Catalog, TableEntry
from retention.config.estate import CatalogFile, EstateConfig
from retention.config.limits import (
    EVENT_NAME_CHARS,
    LEDGER_FIELDS_CHARS,
    PURPOSE_NAME_CHARS,
    SOURCE_NAME_CHARS,
    TABLE_NAME_CHARS,
)
from retention.config.policy import Clock, Policy
from retention.config.problems import ConfigError, Problem, suggest
from retention.config.requests import read_request_settings
from retention.config.yamlfile import parse

__all__ = ["CatalogFile", "EstateConfig", "cross_check", "load_config", "read_config"]


def read_config(
    catalog_path: Path | str, policy_path: Path | str, requests_path: Path | str | None = None
) -> tuple[Catalog | None, Policy | None, list[Problem]]:
    """Every problem of the three files and between them, and each of catalog and policy that parsed: a broken
    policy does not hide the catalog's problems, and `check-config` still compares a catalog that parsed with the
    databases. `requests.yaml` (default: RETENTION_REQUESTS, else beside the catalog; absent means defaults) is
    read and checked against the catalog and policy here too, so check-config and every load see its typos."""
    catalog_path, policy_path = Path(catalog_path), Path(policy_path)
    catalog, problems = parse(Catalog, catalog_path)
    policy, found = parse(Policy, policy_path)
    problems += found
    problems += name_lengths(catalog, policy, str(catalog_path), str(policy_path))
    if catalog is not None and policy is not None:
        problems += cross_check(catalog, policy, str(catalog_path), str(policy_path))
    problems += read_request_settings(catalog, policy, catalog_path, requests_path)[1]
    return catalog, policy, problems


def load_config(
    catalog_path: Path | str, policy_path: Path | str, requests_path: Path | str | None = None
) -> EstateConfig:
    """Parse the files and cross-check them; raises ConfigError listing every problem."""
    catalog, policy, problems = read_config(catalog_path, policy_path, requests_path)
    if problems:
        raise ConfigError(problems)
    assert catalog is not None and policy is not None
    return EstateConfig(catalog, str(catalog_path), policy, str(policy_path))


def _too_long(file: str, entry: str, what: str, name: str, limit: int) -> Problem:
    shown = name if len(name) <= 60 else f"{name[:40]}...{name[-10:]}"
    return Problem(
        file,
        entry,
        f"the {what} name {shown!r} has {len(name)} characters, more than the {limit} the control database stores",
        f"use a {what} name of at most {limit} characters",
    )


def name_lengths(catalog: Catalog | None, policy: Policy | None, cfile: str, pfile: str) -> list[Problem]:
    """Names the ledger stores must fit its columns (`retention.config.limits`); names must not be empty, and a
    source's name no dot, since 'source.table' names a table."""
    problems: list[Problem] = []
    if catalog is not None:
        for source, src in catalog.sources.items():
            where = f"sources.{source}"
            if len(source) > SOURCE_NAME_CHARS:
                problems.append(_too_long(cfile, where, "source", source, SOURCE_NAME_CHARS))
            if not source.strip() or "." in source:
                problems.append(
                    Problem(
                        cfile,
                        where,
                        f"the source name {source!r} is empty or has a dot, which 'source.table' cannot name",
                        "name the source with letters, digits and underscores, e.g. 'crm'",
                    )
                )
            for table, entry in src.tables.items():
                twhere = f"{where}.tables.{table}"
                if len(table) > TABLE_NAME_CHARS:
                    problems.append(_too_long(cfile, twhere, "table", table, TABLE_NAME_CHARS))
                if not table.strip():
                    problems.append(Problem(cfile, twhere, "the table name is empty", "name the table"))
                for event in entry.events:
                    if len(event) > EVENT_NAME_CHARS:
                        problems.append(_too_long(cfile, f"{twhere}.events", "event", event, EVENT_NAME_CHARS))
                for listed in entry.purposes:
                    if len(listed) > PURPOSE_NAME_CHARS:
                        problems.append(_too_long(cfile, f"{twhere}.purposes", "purpose", listed, PURPOSE_NAME_CHARS))
                joined = ",".join(entry.columns)
                if len(joined) > LEDGER_FIELDS_CHARS:
                    problems.append(
                        Problem(
                            cfile,
                            f"{twhere}.columns",
                            f"the names of the table's {len(entry.columns)} personal columns, comma-separated, "
                            f"have {len(joined)} characters, more than the {LEDGER_FIELDS_CHARS} the ledger "
                            "stores for the fields of one action",
                            "the ledger could not record an action on them all: widen ledger_entries.fields "
                            "(retention/config/limits.py and a schema revision) before adding this table",
                        )
                    )
    if policy is not None:
        for name, purpose in policy.purposes.items():
            where = f"purposes.{name}"
            if len(name) > PURPOSE_NAME_CHARS:
                problems.append(_too_long(pfile, where, "purpose", name, PURPOSE_NAME_CHARS))
            if not name.strip():
                problems.append(Problem(pfile, where, "the purpose name is empty", "name the purpose"))
            for field in ("event", "or_at_event"):
                event = getattr(purpose, field)
                if event is not None and len(event) > EVENT_NAME_CHARS:
                    problems.append(_too_long(pfile, f"{where}.{field}", "event", event, EVENT_NAME_CHARS))
    return problems


def cross_check(catalog: Catalog, policy: Policy, cfile: str, pfile: str) -> list[Problem]:
    problems: list[Problem] = []
    purposes = set(policy.purposes)
    known_anonymizers = set(anonymizers.REGISTRY)
    for source, table, entry in catalog.tables():
        where = f"sources.{source}.tables.{table}"
        for i, purpose in enumerate(entry.purposes):
            if purpose not in purposes:
                problems.append(
                    Problem(
                        cfile,
                        f"{where}.purposes[{i}]",
                        f"unknown purpose {purpose!r}",
                        f"define it under 'purposes' in {pfile} or use a defined one ({suggest(purpose, purposes)})",
                    )
                )
        for name, col in entry.columns.items():
            if col.anonymizer not in known_anonymizers:
                problems.append(
                    Problem(
                        cfile,
                        f"{where}.columns.{name}.anonymizer",
                        f"unknown anonymizer {col.anonymizer!r}",
                        suggest(col.anonymizer, known_anonymizers),
                    )
                )
            for purpose in col.purposes or []:
                if purpose not in entry.purposes:
                    problems.append(
                        Problem(
                            cfile,
                            f"{where}.columns.{name}.purposes",
                            f"purpose {purpose!r} is not one of the table's purposes {entry.purposes}",
                            "add it to the table's 'purposes' or remove it here",
                        )
                    )
        for kind, column in entry.subject.identifiers.items():
            if column not in entry.columns:
                problems.append(
                    Problem(
                        cfile,
                        f"{where}.subject.identifiers.{kind.value}",
                        f"identifier column {column!r} is not classified under 'columns'",
                        f"add '{column}:' with its category and anonymizer under 'columns'",
                    )
                )
        parent = entry.subject.parent
        if parent is not None and parent not in catalog.sources[source].tables:
            problems.append(
                Problem(
                    cfile,
                    f"{where}.subject.parent",
                    f"unknown table {parent!r} in source {source!r}",
                    suggest(parent, catalog.sources[source].tables),
                )
            )
        elif parent is not None and len(catalog.table(source, parent).primary_key) > 1:
            problems.append(
                Problem(
                    cfile,
                    f"{where}.subject.parent",
                    f"the parent {parent!r} has a composite primary key, which one foreign key column cannot name",
                    f"link {table!r} to a table with a single-column key (e.g. the table {parent!r} itself links to)",
                )
            )
        has_record_date = catalog.record_date_of(source, table) is not None
        problems += _clock_needs(entry, catalog.events_of(source, table), has_record_date, policy, cfile, where)
    problems += _parent_cycles(catalog, cfile)
    problems += _early_events(catalog, policy, cfile, pfile)
    hold = policy.bookkeeping_hold
    if hold.purpose not in purposes:
        problems.append(
            Problem(
                pfile,
                "bookkeeping_hold.purpose",
                f"unknown purpose {hold.purpose!r}",
                suggest(hold.purpose, purposes),
            )
        )
    for i, qualified in enumerate(hold.tables):
        source, _, table = qualified.partition(".")
        if source not in catalog.sources or table not in catalog.sources[source].tables:
            known = [f"{s}.{t}" for s, t, _ in catalog.tables()]
            problems.append(
                Problem(
                    pfile,
                    f"bookkeeping_hold.tables[{i}]",
                    f"unknown table {qualified!r}",
                    f"name a table of {cfile} ({suggest(qualified, known)})",
                )
            )
        elif hold.purpose not in catalog.table(source, table).purposes:
            problems.append(
                Problem(
                    cfile,
                    f"sources.{source}.tables.{table}.purposes",
                    f"the table is under the bookkeeping hold but does not list purpose {hold.purpose!r}",
                    f"add {hold.purpose!r} to its purposes, or remove the table from bookkeeping_hold in {pfile}",
                )
            )
    return problems


def _clock_needs(
    entry: TableEntry, events: Mapping[str, object], has_record_date: bool, policy: Policy, cfile: str, where: str
) -> list[Problem]:
    problems: list[Problem] = []
    for purpose_name in entry.purposes:
        purpose = policy.purposes.get(purpose_name)
        if purpose is None:
            continue
        if purpose.clock in (Clock.RECORD_DATE, Clock.END_OF_FINANCIAL_YEAR) and not has_record_date:
            inherits = entry.inherit_record_date
            problems.append(
                Problem(
                    cfile,
                    f"{where}.{'inherit_record_date' if inherits else 'record_date'}",
                    f"purpose {purpose_name!r} runs from the record date ({purpose.clock.value}) but "
                    + ("no parent up the chain has one" if inherits else "none is set"),
                    "give the parent a 'record_date'"
                    if inherits
                    else "add 'record_date: <date or timestamp column>', or 'inherit_record_date: true' for a "
                    "child that has no date of its own",
                )
            )
        if purpose.event and purpose.event not in events:
            problems.append(
                Problem(
                    cfile,
                    f"{where}.events",
                    f"purpose {purpose_name!r} waits for event {purpose.event!r}, which neither the table "
                    "nor its parents define",
                    f"add 'events: {{{purpose.event}: <timestamp column>}}' or remove the purpose from the table",
                )
            )
    return problems


def _early_events(catalog: Catalog, policy: Policy, cfile: str, pfile: str) -> list[Problem]:
    """An `or_at_event` is optional per table (a table that cannot see the event ends at its period), but one
    that none of the purpose's tables can see is a typo: it would never end anything early."""
    problems: list[Problem] = []
    for name, purpose in policy.purposes.items():
        event = purpose.or_at_event
        if event is None:
            continue
        tables = [(s, t) for s, t, entry in catalog.tables() if name in entry.purposes]
        visible = {e for s, t in (tables or [(s, t) for s, t, _ in catalog.tables()]) for e in catalog.events_of(s, t)}
        if event not in visible:
            listed = ", ".join(f"{s}.{t}" for s, t in tables) or "no table of the catalog lists the purpose"
            problems.append(
                Problem(
                    pfile,
                    f"purposes.{name}.or_at_event",
                    f"event {event!r} is defined by none of the purpose's tables or their parents ({listed})",
                    f"add 'events: {{{event}: <timestamp column>}}' to one of them in {cfile}, or correct the name"
                    + (f" ({suggest(event, visible)})" if visible else ""),
                )
            )
    return problems


def _parent_cycles(catalog: Catalog, cfile: str) -> list[Problem]:
    problems = []
    for source, table, _ in catalog.tables():
        seen = [table]
        current = catalog.table(source, table).subject.parent
        while current is not None and current in catalog.sources[source].tables:
            if current in seen:
                problems.append(
                    Problem(
                        cfile,
                        f"sources.{source}.tables.{table}.subject.parent",
                        f"parent links form a cycle: {' -> '.join([*seen, current])}",
                        "one table in the chain must link to its person by identifiers",
                    )
                )
                break
            seen.append(current)
            current = catalog.table(source, current).subject.parent
    return problems

"""Loads the catalog and the policy and checks them against each other.

Every mistake becomes a `Problem` naming the file, the entry and the fix; loading fails closed with all of
them in one `ConfigError`, so a typo never reaches a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

import anonymizers
from retention.config.catalog import Catalog, TableEntry
from retention.config.policy import Clock, Policy
from retention.config.problems import ConfigError, Problem, entry_path, suggest

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CatalogFile:
    """A catalog and the file it came from, which every problem found in it names."""

    catalog: Catalog
    catalog_file: str


@dataclass(frozen=True)
class EstateConfig(CatalogFile):
    policy: Policy
    policy_file: str


def _read_yaml(path: Path) -> object:
    if not path.exists():
        raise ConfigError([Problem(str(path), "(file)", "file not found", "create it or pass the right path")])
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(
            [Problem(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}", "fix the YAML syntax")]
        ) from None


def _validate(model: type[M], data: object, file: str) -> tuple[M | None, list[Problem]]:
    if not isinstance(data, Mapping):
        return None, [Problem(file, "(top level)", "expected a mapping of fields", "see config/ for an example")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            kind = err["type"]
            if kind == "extra_forbidden":
                message, fix = f"unknown field {loc[-1]!r}", "remove it or correct its spelling (see README)"
            elif kind == "missing":
                message, fix = f"required field {loc[-1]!r} is missing", f"add '{loc[-1]}:' to this entry"
            else:
                message = err["msg"].removeprefix("Value error, ")
                fix = "" if "; " in message else "correct the value"
                if "; " in message and kind == "value_error":
                    message, fix = message.split("; ", 1)
            problems.append(Problem(file, entry_path(loc), message, fix))
        return None, problems


def _parse(model: type[M], path: Path) -> tuple[M | None, list[Problem]]:
    try:
        data = _read_yaml(path)
    except ConfigError as exc:
        return None, exc.problems
    return _validate(model, data, str(path))


def read_config(
    catalog_path: Path | str, policy_path: Path | str
) -> tuple[Catalog | None, Policy | None, list[Problem]]:
    """Every problem of both files and between them, and each file that parsed: a broken policy does not hide
    the catalog's problems, and `check-config` still compares a catalog that parsed with the databases."""
    catalog_path, policy_path = Path(catalog_path), Path(policy_path)
    catalog, problems = _parse(Catalog, catalog_path)
    policy, found = _parse(Policy, policy_path)
    problems += found
    if catalog is not None and policy is not None:
        problems += cross_check(catalog, policy, str(catalog_path), str(policy_path))
    return catalog, policy, problems


def load_config(catalog_path: Path | str, policy_path: Path | str) -> EstateConfig:
    """Parse both files and cross-check them; raises ConfigError listing every problem."""
    catalog, policy, problems = read_config(catalog_path, policy_path)
    if problems:
        raise ConfigError(problems)
    assert catalog is not None and policy is not None
    return EstateConfig(catalog, str(catalog_path), policy, str(policy_path))


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

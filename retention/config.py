"""Loads the catalog and the policy, checks them against each other and against the real databases.

Every mistake becomes a `Problem` naming the file, the entry and the fix; loading fails closed with all of
them in one `ConfigError`, so a typo never reaches a run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ValidationError

import anonymizers
from retention.catalog import Catalog, TableEntry
from retention.policy import Clock, Policy

M = TypeVar("M", bound=BaseModel)

MARKER_TABLE = "retention_applied_batches"  # written by the apply step; see retention.applying


@dataclass(frozen=True)
class Problem:
    file: str
    entry: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}: {self.entry}: {self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration:"
        super().__init__("\n".join([head, *(f"- {p}" for p in self.problems)]))


@dataclass(frozen=True)
class EstateConfig:
    catalog: Catalog
    policy: Policy
    catalog_file: str
    policy_file: str


def _entry(loc: Iterable[object]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _suggest(word: str, options: Iterable[str]) -> str:
    options = sorted(options)
    close = difflib.get_close_matches(word, options, n=1)
    listed = ", ".join(options)
    return f"did you mean {close[0]!r}? known: {listed}" if close else f"known: {listed}"


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
            problems.append(Problem(file, _entry(loc), message, fix))
        return None, problems


def load_config(catalog_path: Path | str, policy_path: Path | str) -> EstateConfig:
    """Parse both files and cross-check them; raises ConfigError listing every problem."""
    catalog_path, policy_path = Path(catalog_path), Path(policy_path)
    problems: list[Problem] = []
    catalog, found = _validate(Catalog, _read_yaml(catalog_path), str(catalog_path))
    problems += found
    policy, found = _validate(Policy, _read_yaml(policy_path), str(policy_path))
    problems += found
    if catalog is not None and policy is not None:
        problems += cross_check(catalog, policy, str(catalog_path), str(policy_path))
    if problems:
        raise ConfigError(problems)
    assert catalog is not None and policy is not None
    return EstateConfig(catalog, policy, str(catalog_path), str(policy_path))


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
                        f"define it under 'purposes' in {pfile} or use a defined one ({_suggest(purpose, purposes)})",
                    )
                )
        for name, col in entry.columns.items():
            if col.anonymizer not in known_anonymizers:
                problems.append(
                    Problem(
                        cfile,
                        f"{where}.columns.{name}.anonymizer",
                        f"unknown anonymizer {col.anonymizer!r}",
                        _suggest(col.anonymizer, known_anonymizers),
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
                    _suggest(parent, catalog.sources[source].tables),
                )
            )
        problems += _clock_needs(entry, catalog.events_of(source, table), policy, cfile, where)
    problems += _parent_cycles(catalog, cfile)
    hold = policy.bookkeeping_hold
    if hold.purpose not in purposes:
        problems.append(
            Problem(
                pfile,
                "bookkeeping_hold.purpose",
                f"unknown purpose {hold.purpose!r}",
                _suggest(hold.purpose, purposes),
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
                    f"name a table of {cfile} ({_suggest(qualified, known)})",
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
    entry: TableEntry, events: Mapping[str, object], policy: Policy, cfile: str, where: str
) -> list[Problem]:
    problems: list[Problem] = []
    for purpose_name in entry.purposes:
        purpose = policy.purposes.get(purpose_name)
        if purpose is None:
            continue
        if purpose.clock in (Clock.RECORD_DATE, Clock.END_OF_FINANCIAL_YEAR) and not entry.record_date:
            problems.append(
                Problem(
                    cfile,
                    f"{where}.record_date",
                    f"purpose {purpose_name!r} runs from the record date ({purpose.clock.value}) but none is set",
                    "add 'record_date: <date or timestamp column>'",
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


_KIND_OF_TYPE: list[tuple[type, str]] = [
    (sa.Boolean, "boolean"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.Text, "text"),
    (sa.String, "string"),
    (sa.Integer, "integer"),
    (sa.Numeric, "decimal"),
]


def column_kind(column_type: sa.types.TypeEngine) -> str:
    for sa_type, kind in _KIND_OF_TYPE:
        if isinstance(column_type, sa_type):
            if kind == "string" and getattr(column_type, "length", None) is None:
                return "text"
            return kind
    return "other"


def column_specs(table: sa.Table) -> dict[str, anonymizers.ColumnSpec]:
    """What an anonymiser must respect in each column: kind, length, nullability, uniqueness."""
    unique = {
        next(iter(c.columns)).name
        for c in table.constraints
        if isinstance(c, sa.UniqueConstraint | sa.PrimaryKeyConstraint) and len(c.columns) == 1
    }
    unique |= {next(iter(i.columns)).name for i in table.indexes if i.unique and len(i.columns) == 1}
    return {
        c.name: anonymizers.ColumnSpec(
            max_length=getattr(c.type, "length", None),
            nullable=bool(c.nullable),
            unique=c.name in unique,
            kind=k if (k := column_kind(c.type)) != "other" else "string",
        )
        for c in table.columns
    }


def check_against_database(
    config: EstateConfig, source: str, engine: sa.Engine, *, key_id: str | None = None
) -> tuple[list[Problem], list[Problem]]:
    """Reflect one source and compare; returns (problems, warnings). Warnings list unclassified columns.

    With the active key id, token lengths are checked exactly (the id is part of every token)."""
    cfile = config.catalog_file
    problems: list[Problem] = []
    warnings: list[Problem] = []
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    src = config.catalog.sources[source]
    for table, entry in src.tables.items():
        where = f"sources.{source}.tables.{table}"
        if table not in existing:
            problems.append(
                Problem(
                    cfile,
                    where,
                    f"table {table!r} does not exist in the {source} database",
                    _suggest(table, existing),
                )
            )
            continue
        columns = {c["name"]: c for c in inspector.get_columns(table)}
        db_pk = inspector.get_pk_constraint(table).get("constrained_columns") or []

        def need(column: str, entry_name: str, kinds: set[str] | None = None, *, _cols=columns, _where=where) -> None:
            if column not in _cols:
                problems.append(
                    Problem(
                        cfile,
                        f"{_where}.{entry_name}",
                        f"column {column!r} does not exist in table {_where.rsplit('.', 1)[-1]!r}",
                        _suggest(column, _cols),
                    )
                )
            elif kinds is not None and column_kind(_cols[column]["type"]) not in kinds:
                problems.append(
                    Problem(
                        cfile,
                        f"{_where}.{entry_name}",
                        f"column {column!r} has type {_cols[column]['type']}, not a date or timestamp",
                        "name a DATE or TIMESTAMP column here",
                    )
                )

        dated = {"date", "datetime"}
        for column in entry.primary_key:
            need(column, "primary_key")
        if entry.primary_key != db_pk and all(c in columns for c in entry.primary_key):
            problems.append(
                Problem(
                    cfile,
                    f"{where}.primary_key",
                    f"the database's primary key of {table!r} is {db_pk or 'missing'}, not {entry.primary_key}",
                    f"set primary_key to {db_pk}" if db_pk else "add a primary key to the table first",
                )
            )
        for kind, column in entry.subject.identifiers.items():
            need(column, f"subject.identifiers.{kind.value}")
        if entry.subject.foreign_key:
            need(entry.subject.foreign_key, "subject.foreign_key")
        for i, column in enumerate(entry.interactions):
            need(column, f"interactions[{i}]", dated)
        if entry.record_date:
            need(entry.record_date, "record_date", dated)
        for event, column in entry.events.items():
            need(column, f"events.{event}", dated)
        for column in entry.not_personal:
            need(column, "not_personal")
        specs = column_specs(sa.Table(table, sa.MetaData(), autoload_with=engine))
        for name, col in entry.columns.items():
            if name not in columns:
                need(name, f"columns.{name}")
                continue
            anonymizer = anonymizers.REGISTRY.get(col.anonymizer)
            if anonymizer is None:
                continue
            try:
                anonymizer.check(specs[name], col.options, key_id=key_id)
            except ValueError as exc:
                kind = specs[name].kind
                fitting = sorted(n for n, a in anonymizers.REGISTRY.items() if kind in a.kinds)
                problems.append(
                    Problem(
                        cfile,
                        f"{where}.columns.{name}",
                        f"anonymizer {col.anonymizer!r} does not fit column {name!r} ({columns[name]['type']}): {exc}",
                        f"use one that accepts {kind} columns ({', '.join(fitting)}) or adjust its options",
                    )
                )
        known = {
            *entry.primary_key,
            *entry.columns,
            *entry.not_personal,
            *entry.timestamp_columns(),
            *([entry.subject.foreign_key] if entry.subject.foreign_key else []),
        }
        for column in columns:
            if column not in known:
                warnings.append(
                    Problem(
                        cfile,
                        f"{where}",
                        f"column {column!r} is not classified",
                        "list it under 'columns' (personal data) or 'not_personal'",
                    )
                )
    for table in sorted(existing - set(src.tables) - {MARKER_TABLE}):
        warnings.append(
            Problem(cfile, f"sources.{source}", f"table {table!r} in the database is not in the catalog", "add it")
        )
    return problems, warnings

"""The catalog checked against the real databases by reflection, and what reflection tells anonymisers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine.interfaces import ReflectedColumn

import anonymizers
from anonymizers.base import TEXT_KINDS
from retention.config.catalog import IdentifierKind, TableEntry
from retention.config.estate import CatalogFile
from retention.config.problems import Problem, suggest

MARKER_TABLE = "retention_applied_batches"  # written by the apply step; see retention.storage.marker


_KIND_OF_TYPE: list[tuple[type, str]] = [
    (sa.Boolean, "boolean"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.Text, "text"),
    (sa.String, "string"),
    (sa.Integer, "integer"),
    (sa.Numeric, "decimal"),
]


COMPOSITE_KEY_KINDS = ("integer", "string")
"""What a composite key's columns may be: their values survive the key's JSON text in the ledger unchanged."""


def column_kind(column_type: sa.types.TypeEngine) -> str:
    if isinstance(column_type, mysql.TINYINT) and column_type.display_width == 1:
        return "boolean"  # MariaDB and MySQL store BOOLEAN as TINYINT(1), and reflect it so
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


_FAMILY = {"string": "text"}
"""Kinds whose values compare equal: a VARCHAR and a TEXT both hold text."""


def _family(kind: str) -> str:
    return _FAMILY.get(kind, kind)


TEXT_IDENTIFIERS = {"string", "text"}
"""Identifier columns hold text: an integer phone loses its leading zero and its '+', an integer e-mail is no
e-mail. A customer number may also be an integer column that is NOT NULL: with missing values the rows are
read as floats, and '123.0' would never match the '123' a request gives."""


def _identifier_problem(
    cfile: str, where: str, kind: IdentifierKind, column: str, info: ReflectedColumn
) -> Problem | None:
    found = column_kind(info["type"])
    if found in TEXT_IDENTIFIERS:
        return None
    if kind is IdentifierKind.CUSTOMER_NUMBER and found == "integer":
        if not info.get("nullable", True):
            return None
        return Problem(
            cfile,
            f"{where}.subject.identifiers.{kind.value}",
            f"the customer number column {column!r} is an integer column that allows NULL: its values are read as "
            "decimals where any is missing, and then match no request",
            f"make {column!r} NOT NULL, or store customer numbers as text",
        )
    allowed = "text or a NOT NULL integer" if kind is IdentifierKind.CUSTOMER_NUMBER else "text"
    return Problem(
        cfile,
        f"{where}.subject.identifiers.{kind.value}",
        f"the {kind.value} identifier column {column!r} has type {info['type']}, not {allowed}",
        f"name a text column holding the {kind.value}"
        + (" (leading zeros and '+' do not survive a number column)" if kind is IdentifierKind.PHONE else ""),
    )


def _foreign_key_checks(
    cfile: str,
    where: str,
    table: str,
    entry: TableEntry,
    columns: dict[str, ReflectedColumn],
    inspector: sa.Inspector,
    parents: dict[str, TableEntry],
    existing: set[str],
) -> tuple[list[Problem], list[Problem]]:
    """The child's foreign key must point at its parent's key: declared so by the database, or at least of the
    same kind of value (a text column never equals an integer key: the rows would belong to nobody)."""
    fk, parent = entry.subject.foreign_key, entry.subject.parent
    if fk is None or parent is None or fk not in columns or parent not in existing or parent not in parents:
        return [], []
    key = parents[parent].primary_key
    if len(key) != 1:
        return [], []  # reported at load: a composite key cannot be a parent
    parent_key = key[0]
    parent_columns = {c["name"]: c for c in inspector.get_columns(parent)}
    if parent_key not in parent_columns:
        return [], []  # reported with the parent's own primary key
    declared = [d for d in inspector.get_foreign_keys(table) if list(d.get("constrained_columns") or []) == [fk]]
    to_parent = any(
        d.get("referred_table") == parent and list(d.get("referred_columns") or []) == [parent_key] for d in declared
    )
    problems: list[Problem] = []
    warnings: list[Problem] = []
    child_type, parent_type = columns[fk]["type"], parent_columns[parent_key]["type"]
    if _family(column_kind(child_type)) != _family(column_kind(parent_type)):
        problems.append(
            Problem(
                cfile,
                f"{where}.subject.foreign_key",
                f"column {fk!r} has type {child_type} but the parent's key {parent}.{parent_key} has type "
                f"{parent_type}: its values never equal the parent's keys, so its rows would belong to nobody",
                f"name the column of {table!r} that references {parent}.{parent_key}",
            )
        )
    elif declared and not to_parent:
        other = ", ".join(f"{d.get('referred_table')}.{','.join(d.get('referred_columns') or [])}" for d in declared)
        problems.append(
            Problem(
                cfile,
                f"{where}.subject.foreign_key",
                f"the database declares {fk!r} a foreign key to {other}, not to the parent's key {parent}.{parent_key}",
                f"set 'parent' to the table {fk!r} references, or name the column that references {parent!r}",
            )
        )
    elif not to_parent:
        warnings.append(
            Problem(
                cfile,
                f"{where}.subject.foreign_key",
                f"the database declares no foreign key from {table}.{fk} to {parent}.{parent_key}; the types agree, "
                "so the link is taken from the catalog",
                f"declare the foreign key in the database if {fk!r} does reference {parent!r}",
            )
        )
    return problems, warnings


def check_against_database(
    config: CatalogFile, source: str, engine: sa.Engine, *, key_id: str | None = None
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
                    suggest(table, existing),
                )
            )
            continue
        columns = {c["name"]: c for c in inspector.get_columns(table)}
        db_pk = inspector.get_pk_constraint(table).get("constrained_columns") or []

        def need(
            column: str, entry_name: str, kinds: set[str] | None = None, *, _cols=columns, _where=where, _entry=entry
        ) -> None:
            if column not in _cols:
                problems.append(
                    Problem(
                        cfile,
                        f"{_where}.{entry_name}",
                        f"column {column!r} does not exist in table {_where.rsplit('.', 1)[-1]!r}",
                        suggest(column, _cols),
                    )
                )
            elif kinds is not None and column_kind(_cols[column]["type"]) not in kinds:
                if column_kind(_cols[column]["type"]) in TEXT_KINDS and column in _entry.date_formats:
                    return
                problems.append(
                    Problem(
                        cfile,
                        f"{_where}.{entry_name}",
                        f"column {column!r} has type {_cols[column]['type']}, not a date or timestamp",
                        "name a DATE or TIMESTAMP column here; for dates stored as text, declare their format: "
                        f"date_formats: {{{column}: '%Y-%m-%d'}}",
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
        if len(entry.primary_key) > 1:
            for column in entry.primary_key:
                kind = column_kind(columns[column]["type"]) if column in columns else None
                if kind is not None and kind not in COMPOSITE_KEY_KINDS:
                    problems.append(
                        Problem(
                            cfile,
                            f"{where}.primary_key",
                            f"column {column!r} of the composite key has type {columns[column]['type']}",
                            "a composite key's columns must be integers or text; use a surrogate key otherwise",
                        )
                    )
        for id_kind, column in entry.subject.identifiers.items():
            need(column, f"subject.identifiers.{id_kind.value}")
            if column in columns and (found := _identifier_problem(cfile, where, id_kind, column, columns[column])):
                problems.append(found)
        if entry.subject.foreign_key:
            need(entry.subject.foreign_key, "subject.foreign_key")
            found_fk, warned_fk = _foreign_key_checks(
                cfile, where, table, entry, columns, inspector, src.tables, existing
            )
            problems.extend(found_fk)
            warnings.extend(warned_fk)
        for i, column in enumerate(entry.interactions):
            need(column, f"interactions[{i}]", dated)
        if entry.record_date:
            need(entry.record_date, "record_date", dated)
        for event, column in entry.events.items():
            need(column, f"events.{event}", dated)
        for column in entry.not_personal:
            need(column, "not_personal")
        if entry.changed_at:
            need(entry.changed_at, "changed_at", dated)
        specs = column_specs(sa.Table(table, sa.MetaData(), autoload_with=engine))
        for name, col in entry.columns.items():
            if name not in columns:
                need(name, f"columns.{name}")
                continue
            anonymizer = anonymizers.REGISTRY.get(col.anonymizer)
            if anonymizer is None:
                continue
            try:
                anonymizer.check(specs[name], col.options, key_id=key_id, locale=config.catalog.locale_of(source))
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
        known = set(entry.named_columns())
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
    for table in sorted(set(src.not_personal_tables) - existing):
        warnings.append(
            Problem(
                cfile,
                f"sources.{source}.not_personal_tables",
                f"table {table!r} does not exist in the {source} database",
                "remove it from not_personal_tables",
            )
        )
    for table in sorted(existing - set(src.tables) - set(src.not_personal_tables) - {MARKER_TABLE}):
        warnings.append(
            Problem(cfile, f"sources.{source}", f"table {table!r} in the database is not in the catalog", "add it")
        )
    return problems, warnings

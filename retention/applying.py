"""Applying a plan to one source: set-based, batched, one transaction a batch, children before parents.

Crash safety across two databases (the source and the control database) without a distributed transaction:

1. the batch's ledger rows and its 'pending' row in `ledger_batches` are written to the control database
   and committed;
2. the batch is applied to the source in one transaction that also inserts the batch id into the source's
   small marker table (`retention_applied_batches`); it commits or rolls back as a whole;
3. the batch is set 'done'. To save a commit per batch this happens in the next batch's step 1, or at the end
   of the run.

A run killed between 1 and 2 leaves a pending batch and no marker: the next run re-applies the batch from its
ledger rows alone. Killed between 2 and 3: the marker is there, so the next run only sets the batch 'done'.
Killed inside 2: the source rolled back, as between 1 and 2. So ledger and databases always agree after the
next run's recovery, and no batch is ever half-done.

The writes go past SQLAlchemy's per-row processing where volumes are large (ledger rows, deletes, updates),
because at a million rows that processing costs more than the database's own work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import os
import signal
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import anonymizers
from anonymizers import ColumnSpec, Context, Key
from anonymizers.clear import constant_for
from retention.catalog import Category, TableEntry
from retention.config import MARKER_TABLE, EstateConfig, column_specs
from retention.control import DONE, PENDING, ledger, ledger_batches, ledger_entries, ledger_rules
from retention.keys import KeyError_, Keyring
from retention.planning import Plan
from retention.policy import Action

DEFAULT_BATCH_ROWS = 5000
# anonymisers that replace the whole value, so the original must be gone from the row afterwards
REPLACING = frozenset({"token", "clear"} | {name for name in anonymizers.REGISTRY if name.startswith("surrogate_")})
FAULT_ENV = "RETENTION_FAULT"  # test hook: "<phase>:<batch number>" kills the process with SIGKILL there

marker_metadata = sa.MetaData()
marker = sa.Table(
    MARKER_TABLE,
    marker_metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass
class TableOutcome:
    deleted: int = 0
    updated: int = 0
    entries: int = 0


@dataclass
class Verification:
    """What the check after apply compares: keyed digests only, never values.

    The digests of replaced values are taken from the same read that fetches them for anonymising, so apply
    reads no column twice; the check afterwards reads the changed rows again by key.
    """

    held: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> pk -> row digest before apply
    deleted: dict[str, list[object]] = field(default_factory=dict)  # table -> pks deleted
    cleared: dict[str, dict[str, list[object]]] = field(default_factory=dict)  # table -> field -> pks
    originals: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # table -> field -> pk -> digest


@dataclass
class ApplyResult:
    source: str
    tables: dict[str, TableOutcome] = field(default_factory=dict)
    batches: int = 0
    recovered_batches: int = 0
    verification: Verification = field(default_factory=Verification)

    @property
    def entries(self) -> int:
        return sum(t.entries for t in self.tables.values())


def _fault(phase: str, batch_number: int) -> None:
    """Kill this process at a named point, for the kill-and-resume tests."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == f"{phase}:{batch_number}":
        os.kill(os.getpid(), signal.SIGKILL)


def _digest(secret: bytes, value: object) -> str:
    """A keyed digest (BLAKE2b in keyed mode is a MAC), so verification material reveals no value."""
    return hashlib.blake2b(repr(value).encode(), key=secret[:64], digest_size=16).hexdigest()


def _row_digest(secret: bytes, row: tuple) -> str:
    return _digest(secret, tuple(row))


def _marks(conn: sa.Connection, count: int) -> list[str]:
    style = conn.dialect.paramstyle
    return ["?"] * count if style == "qmark" else ["%s"] * count


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _bind_processors(conn: sa.Connection, columns: list[sa.Column]) -> list[Callable[[object], object] | None]:
    """SQLAlchemy's own conversions to what the driver takes, so bulk writes store exactly what it would."""
    dialect = conn.dialect
    return [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


def _key_match(conn: sa.Connection, column: str, keys: list) -> tuple[str, tuple]:
    """`column IN (...)` and its parameters for a chunk of keys; on PostgreSQL `= ANY(%s)` with one array,
    because psycopg parses a statement's placeholders in Python, which at thousands of keys costs more than
    the statement."""
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        return f"{quote(column)} = ANY(%s)", (list(keys),)
    return f"{quote(column)} IN ({', '.join(_marks(conn, len(keys)))})", tuple(keys)


def in_keys(conn: sa.Connection, column: sa.ColumnElement, keys: list) -> sa.ColumnElement[bool]:
    """The same as `_key_match` for SQLAlchemy statements."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(keys), type_=postgresql.ARRAY(column.type)))
    return column.in_(keys)


def delete_keys(conn: sa.Connection, table: sa.Table, pk: str, keys: list[object]) -> None:
    """DELETE ... WHERE pk IN (...), in chunks the driver accepts."""
    quote = conn.dialect.identifier_preparer.quote
    for chunk in _chunks(keys, MAX_PARAMS):
        match, params = _key_match(conn, pk, chunk)
        conn.exec_driver_sql(f"DELETE FROM {quote(table.name)} WHERE {match}", params)


def set_constants(conn: sa.Connection, table: sa.Table, pk: str, values: dict[str, object], keys: list) -> None:
    """UPDATE ... SET column = constant WHERE pk IN (...), in chunks."""
    quote = conn.dialect.identifier_preparer.quote
    names = list(values)
    processors = _bind_processors(conn, [table.c[n] for n in names])
    constants = tuple(p(values[n]) if p else values[n] for n, p in zip(names, processors, strict=True))
    sets = ", ".join(f"{quote(n)} = {m}" for n, m in zip(names, _marks(conn, len(names)), strict=True))
    for chunk in _chunks(keys, MAX_PARAMS):
        match, params = _key_match(conn, pk, chunk)
        conn.exec_driver_sql(f"UPDATE {quote(table.name)} SET {sets} WHERE {match}", constants + params)


def fetch_raw(conn: sa.Connection, table: sa.Table, columns: list[str], pk: str, keys: list) -> Iterator[tuple]:
    """Rows of the given columns by key, as the driver returns them (no type processing: for digests)."""
    quote = conn.dialect.identifier_preparer.quote
    listed = ", ".join(quote(c) for c in columns)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for chunk in _chunks(keys, MAX_PARAMS):
            match, params = _key_match(conn, pk, chunk)
            cursor.execute(f"SELECT {listed} FROM {quote(table.name)} WHERE {match}", params)
            yield from cursor.fetchall()
    finally:
        cursor.close()


ENTRY_COLUMNS = ["batch_id", "rule_id", "pk", "subject", "action", "fields"]
MAX_PARAMS = 30_000  # below every driver's and server's limit on bound parameters in one statement


def _copy_rows(conn: sa.Connection, table_sql: str, names: list[str], rows: list[tuple]) -> None:
    """PostgreSQL's COPY through psycopg: the fastest way to hand the server many rows."""
    quote = conn.dialect.identifier_preparer.quote
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table_sql} ({', '.join(quote(n) for n in names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _executemany(conn: sa.Connection, sql: str, rows: list[tuple]) -> None:
    """The driver's executemany on the transaction's own connection: SQLAlchemy's wrapper inspects every row,
    which costs more than SQLite's insert itself."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def insert_many(conn: sa.Connection, table: sa.Table, names: list[str], values: list[tuple]) -> None:
    """Many driver-ready rows at once, past SQLAlchemy's per-row bind processing, which dominates at apply's
    volumes: COPY on PostgreSQL, the driver's executemany elsewhere (sqlite3 loops in C; PyMySQL folds the
    rows into multi-row VALUES)."""
    if not values:
        return
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, quote(table.name), names, values)
        return
    marks = ", ".join(_marks(conn, len(names)))
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES ({marks})"
    _executemany(conn, sql, values)


_temp_counter = itertools.count()


def update_many(conn: sa.Connection, table: sa.Table, fields: list[str], pk: str, rows: list[tuple]) -> None:
    """SET fields WHERE pk = key for many rows (values first, key last): on PostgreSQL a temporary table
    filled by COPY and joined in one UPDATE; on MariaDB one joined UPDATE per chunk; on SQLite the driver's
    executemany, whose loop runs in C."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    dialect = conn.dialect.name
    name = quote(table.name)
    columns = [*fields, pk]
    values = rows
    processors = _bind_processors(conn, [table.c[c] for c in columns])
    if dialect != "postgresql" and any(processors):
        values = [
            tuple(p(v) if p is not None and v is not None else v for p, v in zip(processors, row, strict=True))
            for row in rows
        ]
    if dialect == "sqlite":
        sets = ", ".join(f"{quote(f)} = ?" for f in fields)
        _executemany(conn, f"UPDATE {name} SET {sets} WHERE {quote(pk)} = ?", values)
    elif dialect == "postgresql":
        temp = quote(f"retention_update_{next(_temp_counter)}")
        listed = ", ".join(quote(c) for c in columns)
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {listed} FROM {name} WITH NO DATA"
        )
        _copy_rows(conn, temp, columns, values)
        sets = ", ".join(f"{quote(f)} = v.{quote(f)}" for f in fields)
        conn.exec_driver_sql(f"UPDATE {name} SET {sets} FROM {temp} AS v WHERE {name}.{quote(pk)} = v.{quote(pk)}")
    else:
        per = max(1, MAX_PARAMS // len(columns))
        first = "SELECT " + ", ".join(f"%s AS {quote('v_' + c)}" for c in columns)
        rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(columns))
        sets = ", ".join(f"t.{quote(f)} = v.{quote('v_' + f)}" for f in fields)
        for start in range(0, len(values), per):
            chunk = values[start : start + per]
            sql = (
                f"UPDATE {name} AS t JOIN ({first}{rest * (len(chunk) - 1)}) AS v "
                f"ON t.{quote(pk)} = v.{quote('v_' + pk)} SET {sets}"
            )
            conn.exec_driver_sql(sql, tuple(v for row in chunk for v in row))


def children_first(engine: sa.Engine, tables: list[str]) -> list[str]:
    """Tables ordered by the foreign keys the database declares: referencing tables before referenced ones."""
    md = sa.MetaData()
    md.reflect(engine, only=tables)
    ordered = [t.name for t in reversed(md.sorted_tables)]
    return [t for t in ordered if t in tables]


@dataclass
class _Ops:
    """Per-row operations of one batch of one table."""

    deletes: list[object]
    clears: dict[tuple[str, ...], list[object]]  # fields -> pks
    pseudonymise: dict[tuple[str, ...], list[object]]  # fields -> pks
    subjects: dict[object, str]


def _operations(entries: pd.DataFrame) -> _Ops:
    """Merge a row's entries: a delete wins; a field both cleared and pseudonymised is cleared."""
    if (entries["action"] == Action.DELETE.value).all():
        return _Ops(list(dict.fromkeys(entries["pk"].tolist())), {}, {}, {})
    deletes: list[object] = []
    clear_fields: dict[object, set[str]] = defaultdict(set)
    pseudo_fields: dict[object, set[str]] = defaultdict(set)
    subjects: dict[object, str] = {}
    for pk, subject, action, fields in zip(
        entries["pk"].tolist(),
        entries["subject"].tolist(),
        entries["action"].tolist(),
        entries["fields"].tolist(),
        strict=True,
    ):
        subjects[pk] = subject
        if action == Action.DELETE.value:
            deletes.append(pk)
        elif action == Action.CLEAR.value:
            clear_fields[pk].update(fields)
        else:
            pseudo_fields[pk].update(fields)
    deleted = set(deletes)
    clears: dict[tuple[str, ...], list[object]] = defaultdict(list)
    pseudos: dict[tuple[str, ...], list[object]] = defaultdict(list)
    for pk in dict.fromkeys([*clear_fields, *pseudo_fields]):
        if pk in deleted:
            continue
        cleared = clear_fields.get(pk, set())
        if cleared:
            clears[tuple(sorted(cleared))].append(pk)
        rest = pseudo_fields.get(pk, set()) - cleared
        if rest:
            pseudos[tuple(sorted(rest))].append(pk)
    return _Ops(list(dict.fromkeys(deletes)), dict(clears), dict(pseudos), subjects)


class SourceApplier:
    """Applies plan entries (or pending ledger rows) to one source database."""

    def __init__(
        self,
        config: EstateConfig,
        source: str,
        engine: sa.Engine,
        control: sa.Engine,
        keyring: Keyring,
        *,
        run_id: str,
        as_of: dt.date,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.engine = engine
        self.control = control
        self.keyring = keyring
        self.run_id = run_id
        self.as_of = as_of
        self.batch_rows = batch_rows
        self.progress = progress
        self._tables: dict[str, sa.Table] = {}
        self._specs: dict[str, dict[str, ColumnSpec]] = {}
        self._batch_number = 0
        self._finished: list[str] = []  # batches the source committed, to be set 'done' with the next write
        self._rule_cache: dict[tuple[str, str, str], int] = {}
        self._reapply_key_id: str | None = None
        self._secret = hmac.new(keyring.subject.secret, b"verification", hashlib.sha256).digest()
        marker_metadata.create_all(engine)

    # --- reflection -------------------------------------------------------------------------------------

    def table(self, name: str) -> sa.Table:
        if name not in self._tables:
            table = sa.Table(name, sa.MetaData(), autoload_with=self.engine)
            self._specs[name] = column_specs(table)
            self._tables[name] = table
        return self._tables[name]

    def _key(self) -> Key:
        """The key for pseudonyms: the active one, or the one a pending batch recorded when it is re-applied."""
        return self.keyring.keys[self._reapply_key_id] if self._reapply_key_id else self.keyring.active

    def entry(self, table: str) -> TableEntry:
        return self.config.catalog.table(self.source, table)

    # --- the run ----------------------------------------------------------------------------------------

    def check_anonymizers(self, tables: list[str]) -> None:
        """Fail before the first batch if an anonymiser cannot serve its column with the active key."""
        for table in tables:
            self.table(table)
            for name, col in self.entry(table).columns.items():
                try:
                    anonymizers.get(col.anonymizer).check(
                        self._specs[table][name], col.options, key_id=self.keyring.active_id
                    )
                except ValueError as exc:
                    raise ValueError(
                        f"{self.config.catalog_file}: sources.{self.source}.tables.{table}.columns.{name}: {exc}"
                    ) from None

    def apply(self, plan: Plan) -> ApplyResult:
        result = ApplyResult(self.source)
        result.recovered_batches = self.recover()
        tables = [t for (s, t) in plan.entries if s == self.source]
        self.check_anonymizers(tables)
        self._checksum_held(plan, result.verification)
        try:
            for table in children_first(self.engine, tables):
                entries = plan.entries[(self.source, table)]
                outcome = result.tables.setdefault(table, TableOutcome())
                for batch in self._batches(entries):
                    self._apply_batch(table, batch, outcome, result.verification)
                    result.batches += 1
                    if self.progress is not None:
                        self.progress(table, outcome.entries, len(entries))
        finally:
            if self._finished:
                with self.control.begin() as conn:
                    self._mark_finished(conn)
        return result

    def _batches(self, entries: pd.DataFrame) -> Iterator[pd.DataFrame]:
        """Batches of whole rows (all entries of a row stay together), in one pass over the entries."""
        codes, _ = pd.factorize(entries["pk"])
        for _, batch in entries.groupby(codes // self.batch_rows, sort=True):
            yield batch

    def _rules(self, batch: pd.DataFrame) -> list[tuple[str, str, str]]:
        """(purpose, rule, legal basis) of each entry. Entries may carry their own 'rule' and 'legal_basis'
        (subject requests); otherwise both come from the policy's purpose."""
        purposes = batch["purpose"].tolist()
        if "rule" in batch.columns and "legal_basis" in batch.columns:
            rules = batch["rule"].astype(str).str.slice(0, 200).tolist()
            bases = batch["legal_basis"].astype(str).str.slice(0, 250).tolist()
            return list(zip(purposes, rules, bases, strict=True))
        by_purpose = {
            name: (name, f"{name}: {p.clock.value} + {p.period}, then {p.action.value}"[:200], p.legal_basis[:250])
            for name, p in self.config.policy.purposes.items()
        }
        return [by_purpose[p] for p in purposes]

    def _rule_ids(self, triples: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
        """Ids of rules in `ledger_rules`, adding the new ones (in their own transaction: another run may add
        the same rule at the same time, and the unique constraint then keeps one)."""
        missing = triples - self._rule_cache.keys()
        if missing:
            for triple in missing:
                try:
                    with self.control.begin() as conn:
                        conn.execute(
                            ledger_rules.insert().values(purpose=triple[0], rule=triple[1], legal_basis=triple[2])
                        )
                except sa.exc.IntegrityError:
                    pass  # already there
            with self.control.connect() as conn:
                known = conn.execute(sa.select(ledger_rules).where(ledger_rules.c.purpose.in_({t[0] for t in missing})))
                for row in known:
                    self._rule_cache[(row.purpose, row.rule, row.legal_basis)] = row.rule_id
        return self._rule_cache

    def _write_ledger(self, table: str, batch: pd.DataFrame, batch_id: str) -> None:
        """The batch's row in `ledger_batches` ('pending') and one ledger entry per plan entry, in one
        transaction that also sets the batches finished since the last write 'done'."""
        triples = self._rules(batch)
        ids = self._rule_ids(set(triples))
        rows = list(
            zip(
                itertools.repeat(batch_id),
                [ids[t] for t in triples],
                [str(pk) for pk in batch["pk"].tolist()],
                batch["subject"].tolist(),
                batch["action"].tolist(),
                [",".join(f) for f in batch["fields"].tolist()],
            )
        )
        with self.control.begin() as conn:
            self._mark_finished(conn)
            conn.execute(
                ledger_batches.insert().values(
                    batch_id=batch_id,
                    run_id=self.run_id,
                    as_of=self.as_of,
                    source=self.source,
                    table_name=str(table),
                    key_id=self.keyring.active_id,
                    applied_at=dt.datetime.now(dt.UTC),
                    status=PENDING,
                )
            )
            insert_many(conn, ledger_entries, ENTRY_COLUMNS, rows)

    def _apply_batch(self, table: str, batch: pd.DataFrame, outcome: TableOutcome, ver: Verification) -> None:
        self._batch_number += 1
        batch_id = str(uuid.uuid4())
        self._write_ledger(table, batch, batch_id)
        _fault("after_ledger", self._batch_number)
        ops = _operations(batch)
        self._execute(table, ops, batch_id, ver)
        self._finished.append(batch_id)
        _fault("after_source", self._batch_number)
        outcome.deleted += len(ops.deletes)
        outcome.updated += len({pk for pks in [*ops.clears.values(), *ops.pseudonymise.values()] for pk in pks})
        outcome.entries += len(batch)

    def _mark_finished(self, conn: sa.Connection) -> None:
        """Set the batches the source has committed 'done', inside the caller's control transaction."""
        if self._finished:
            conn.execute(
                ledger_batches.update().where(ledger_batches.c.batch_id.in_(self._finished)).values(status=DONE)
            )
            self._finished.clear()

    def _execute(self, table_name: str, ops: _Ops, batch_id: str, ver: Verification | None) -> None:
        table = self.table(table_name)
        entry = self.entry(table_name)
        with self.engine.begin() as conn:
            if ops.deletes:
                delete_keys(conn, table, entry.pk, ops.deletes)
                if ver is not None:
                    ver.deleted.setdefault(table_name, []).extend(ops.deletes)
            for fields, pks in ops.clears.items():
                if ver is not None:
                    self._record_cleared(conn, table, entry, list(fields), pks, ver)
                set_constants(conn, table, entry.pk, {f: self._cleared_value(table_name, f) for f in fields}, pks)
            for fields, pks in ops.pseudonymise.items():
                self._pseudonymise(conn, table, entry, list(fields), pks, ops.subjects, ver)
            _fault("inside_source", self._batch_number)
            conn.execute(marker.insert().values(batch_id=batch_id, applied_at=dt.datetime.now(dt.UTC)))

    def _record_cleared(
        self, conn: sa.Connection, table: sa.Table, entry: TableEntry, fields: list[str], pks: list, ver: Verification
    ) -> None:
        """Digests of the values about to be cleared, read by key (a value equal to the constant is already
        cleared)."""
        typed = conn.execute(
            sa.select(table.c[entry.pk], *(table.c[f] for f in fields)).where(in_keys(conn, table.c[entry.pk], pks))
        )
        rows = typed.all()
        for i, f in enumerate(fields, start=1):
            constant = self._cleared_value(table.name, f)
            self._record_originals(ver, table.name, f, [(r[0], r[i]) for r in rows if r[i] != constant])
        for f in fields:
            ver.cleared.setdefault(table.name, {}).setdefault(f, []).extend(pks)

    def _record_originals(self, ver: Verification, table: str, column: str, pairs: list[tuple]) -> None:
        digests = ver.originals.setdefault(table, {}).setdefault(column, {})
        for pk, value in pairs:
            if value is not None:
                digests[str(pk)] = _digest(self._secret, value)

    def _cleared_value(self, table: str, column: str) -> object:
        spec = self._specs[table][column]
        if spec.nullable:
            return None
        options = self.entry(table).columns[column].options
        return constant_for(spec, options.get("value"))

    def _pseudonymise(
        self,
        conn: sa.Connection,
        table: sa.Table,
        entry: TableEntry,
        fields: list[str],
        pks: list[object],
        subjects: dict[object, str],
        ver: Verification | None,
    ) -> None:
        pk_col = table.c[entry.pk]
        specs = self._specs[table.name]
        rows = conn.execute(
            sa.select(pk_col, *(table.c[f] for f in fields)).where(in_keys(conn, pk_col, pks)).with_for_update()
        ).all()
        if not rows:
            return
        if ver is not None:
            for i, f in enumerate(fields, start=1):
                if entry.columns[f].anonymizer in REPLACING:
                    self._record_originals(ver, table.name, f, [(r[0], r[i]) for r in rows])
        frame = pd.DataFrame([tuple(r) for r in rows], columns=["pk", *fields], dtype=object)
        seeds = frame["pk"].map(subjects).astype(object)
        names = self._own_names(conn, table.name, entry, frame["pk"].tolist())
        new: dict[str, pd.Series] = {}
        for f in fields:
            col = entry.columns[f]
            anonymizer = anonymizers.get(col.anonymizer)
            spec = specs[f]
            if anonymizer.name == "clear":
                new[f] = pd.Series([self._cleared_value(table.name, f)] * len(frame), index=frame.index, dtype=object)
                continue
            ctx = Context(key=self._key(), column=spec, seeds=seeds, own_names=names, options=col.options)
            values = anonymizer(frame[f], ctx)
            if spec.unique:
                taken = self._collisions(conn, table, pk_col, f, values, pks)
                if taken:
                    ctx = Context(
                        key=self._key(),
                        column=spec,
                        seeds=seeds,
                        own_names=names,
                        options=col.options,
                        taken=frozenset(taken),
                    )
                    values = anonymizer(frame[f], ctx)
            new[f] = values.astype(object).where(values.notna(), None)
        columns = [new[f].tolist() for f in fields]
        update_many(conn, table, fields, entry.pk, list(zip(*columns, frame["pk"].tolist(), strict=True)))

    def _collisions(
        self, conn: sa.Connection, table: sa.Table, pk_col: sa.Column, column: str, values: pd.Series, pks: list
    ) -> set[str]:
        """New values of a unique column that other rows already hold (checked only for this batch's values)."""
        candidates = values.dropna().unique().tolist()
        if not candidates:
            return set()
        mine = {str(pk) for pk in pks}
        found = fetch_raw(conn, table, [pk_col.name, column], column, candidates)
        return {str(v) for pk, v in found if str(pk) not in mine}

    def _own_names(self, conn: sa.Connection, table: str, entry: TableEntry, pks: list[object]) -> pd.Series | None:
        """The person's name for scrubbing free text: a name column of the row or of its nearest ancestor."""
        chain = self.config.catalog.parent_chain(self.source, table)
        for depth, name in enumerate(chain):
            candidates = [c for c, spec in self.entry(name).columns.items() if spec.category is Category.NAME]
            if not candidates:
                continue
            tables = [self.table(t) for t in chain[: depth + 1]]
            query = sa.select(tables[0].c[entry.pk], tables[-1].c[candidates[0]]).select_from(tables[0])
            for child, parent in itertools.pairwise(tables):
                link = self.entry(child.name).subject
                query = query.join(parent, child.c[link.foreign_key] == parent.c[self.entry(parent.name).pk])
            rows = dict(conn.execute(query.where(in_keys(conn, tables[0].c[entry.pk], pks))).all())
            return pd.Series([rows.get(pk) for pk in pks], dtype=object)
        return None

    # --- verification material --------------------------------------------------------------------------

    def _checksum_held(self, plan: Plan, ver: Verification) -> None:
        for (source, table), keys in plan.held_keys.items():
            if source != self.source or keys.empty:
                continue
            with self.engine.connect() as conn:
                ver.held[table] = self.row_digests(conn, table, keys.index.tolist())

    def row_digests(self, conn: sa.Connection, table: str, pks: list) -> dict[str, str]:
        """pk -> keyed digest of the whole row as the driver returns it, for the rows with the given keys."""
        sa_table = self.table(table)
        pk = self.entry(table).pk
        position = list(sa_table.columns.keys()).index(pk)
        rows = fetch_raw(conn, sa_table, list(sa_table.columns.keys()), pk, pks)
        return {str(row[position]): _row_digest(self._secret, tuple(row)) for row in rows}

    def value_digests(self, conn: sa.Connection, table: str, column: str, pks: list) -> dict[str, str]:
        """pk -> keyed digest of the non-null value in `column`, read typed as anonymising reads it, by key."""
        sa_table = self.table(table)
        pk_col = sa_table.c[self.entry(table).pk]
        found: dict[str, str] = {}
        for chunk in _chunks(pks, MAX_PARAMS):
            query = sa.select(pk_col, sa_table.c[column]).where(in_keys(conn, pk_col, chunk))
            found.update({str(pk): _digest(self._secret, v) for pk, v in conn.execute(query) if v is not None})
        return found

    # --- recovery ---------------------------------------------------------------------------------------

    def recover(self) -> int:
        """Finish batches a killed run left pending: mark them done if the source committed, else re-apply."""
        with self.control.connect() as conn:
            pending = (
                conn.execute(
                    sa.select(ledger_batches.c.batch_id).where(
                        ledger_batches.c.source == self.source, ledger_batches.c.status == PENDING
                    )
                )
                .scalars()
                .all()
            )
        if not pending:
            return 0
        with self.engine.connect() as conn:
            committed = set(conn.execute(sa.select(marker.c.batch_id).where(marker.c.batch_id.in_(pending))).scalars())
        for batch_id in pending:
            if batch_id not in committed:
                with self.control.connect() as conn:
                    rows = conn.execute(sa.select(ledger).where(ledger.c.batch_id == batch_id)).mappings().all()
                for table, table_rows in _group(rows, "table_name").items():
                    self.reapply(table, table_rows, batch_id, table_rows[0]["key_id"])
            with self.control.begin() as conn:
                conn.execute(ledger_batches.update().where(ledger_batches.c.batch_id == batch_id).values(status=DONE))
        return len(pending)

    def reapply(self, table: str, rows: list, batch_id: str, key_id: str) -> None:
        """Re-apply recorded ledger rows of one table under their batch id and with the key they were made
        with, so every value comes out as it did the first time (recovery after a kill, replay after a restore).
        """
        if key_id not in self.keyring.keys:
            raise KeyError_(
                f"batch {batch_id} was made with key {key_id!r}, which the keyring lacks; put that key back in "
                "the key file (keys are only ever added) and try again"
            )
        entries = pd.DataFrame(
            {
                "pk": [self.typed_pk(table, r["pk"]) for r in rows],
                "subject": [r["subject"] for r in rows],
                "action": [r["action"] for r in rows],
                "fields": [tuple(f for f in r["fields"].split(",") if f) for r in rows],
            }
        )
        self._reapply_key_id = key_id
        try:
            self._execute(table, _operations(entries), batch_id, None)
        finally:
            self._reapply_key_id = None

    def typed_pk(self, table: str, pk: str) -> object:
        """A primary key as the ledger writes it (text) turned back into the column's type."""
        self.table(table)
        return int(pk) if self._specs[table][self.entry(table).pk].kind == "integer" else pk


def _group(rows: list, key: str) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


def _count(conn: sa.Connection, pk_col: sa.Column, pks: list, *conditions: sa.ColumnElement[bool]) -> int:
    """Rows among the given keys that meet the conditions."""
    return sum(
        conn.execute(sa.select(sa.func.count()).where(in_keys(conn, pk_col, chunk), *conditions)).scalar_one()
        for chunk in _chunks(pks, MAX_PARAMS)
    )


def verify(applier: SourceApplier, result: ApplyResult) -> list[str]:
    """Problems found after apply (empty when everything is as planned); messages hold no values."""
    problems: list[str] = []
    ver = result.verification
    with applier.engine.connect() as conn:
        for table, pks in ver.deleted.items():
            left = _count(conn, applier.table(table).c[applier.entry(table).pk], pks)
            if left:
                problems.append(f"{applier.source}.{table}: {left} rows planned for deletion are still there")
        for table, fields in ver.cleared.items():
            sa_table = applier.table(table)
            pk_col = sa_table.c[applier.entry(table).pk]
            for f, pks in fields.items():
                expected = applier._cleared_value(table, f)
                condition = sa_table.c[f].is_not(None) if expected is None else sa_table.c[f] != expected
                bad = _count(conn, pk_col, pks, condition)
                if bad:
                    problems.append(f"{applier.source}.{table}.{f}: {bad} rows planned to be cleared are not")
        for table, fields in ver.originals.items():
            for f, own in fields.items():
                now = applier.value_digests(conn, table, f, [applier.typed_pk(table, pk) for pk in own])
                kept = sum(1 for pk, digest in now.items() if own[pk] == digest)
                if kept:
                    problems.append(f"{applier.source}.{table}.{f}: {kept} changed rows still hold their value")
        for table, digests in ver.held.items():
            now = applier.row_digests(conn, table, [applier.typed_pk(table, pk) for pk in digests])
            changed = sum(1 for pk, d in digests.items() if now.get(pk) != d)
            if changed:
                problems.append(f"{applier.source}.{table}: {changed} held rows changed during apply")
    return problems

"""Applying a plan to one source: set-based, batched, one transaction a batch, children before parents.

Crash safety across two databases (the source and the control database) without a distributed transaction:

1. the batch's ledger rows and its 'pending' row in `ledger_batches` are written to the control database
   and committed;
2. the batch is applied to the source in one transaction that also inserts the batch id into the source's
   small marker table (`retention_applied_batches`); it commits or rolls back as a whole;
3. the batch is set 'done'. To save a commit per batch this happens in a later batch's step 1, or at the end
   of the run.

A run killed between 1 and 2 leaves a pending batch and no marker: the next run re-applies the batch from its
ledger rows alone. Killed between 2 and 3: the marker is there, so the next run only sets the batch 'done'.
Killed inside 2: the source rolled back, as between 1 and 2. So ledger and databases always agree after the
next run's recovery, and no batch is ever half-done.

Step 1 may run in a writer process a few batches ahead of steps 2 (`retention.apply.ledger`); the source side
still waits for each batch's step 1 before its step 2, so the order above holds batch by batch. The apply order
is the foreign keys' alone; the ledger takes each table's held-row checksums before its first batch, whatever
that order. The large writes go to the driver directly (`retention.storage.bulk`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hmac
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

import anonymizers
from anonymizers import ColumnSpec, Context, Key
from anonymizers.clear import constant_for
from retention.apply.batches import HeldRows, RunBatches
from retention.apply.digests import RowDigests, digest_map, row_digests
from retention.apply.faults import fault
from retention.apply.ledger import open_ledger, prepare_ledger
from retention.apply.ledger_writer import LedgerWriter
from retention.apply.operations import RowOperations, row_operations
from retention.apply.result import ApplyResult, TableOutcome, Verification
from retention.config.catalog import Category, TableEntry
from retention.config.database import column_specs
from retention.config.keys import KeyError_, Keyring
from retention.config.loading import EstateConfig
from retention.daily.planning import Plan
from retention.rules.calendar import utc
from retention.rules.references import children_first
from retention.storage.bulk import (
    delete_keys,
    fetch_raw,
    fetch_typed,
    set_constants,
    update_many,
)
from retention.storage.control import load_holds
from retention.storage.leases import DAILY, held, holding, lease_seconds, live_owners, source_lease
from retention.storage.marker import marker, marker_metadata
from retention.storage.row_keys import RowKey
from retention.storage.schema import DONE, PENDING, ledger, ledger_batches, ledger_entries

DEFAULT_LEASE_WAIT_SECONDS = 600
"""How long an apply waits for another run's writes to the same source (a request's, a day's) to end."""

DEFAULT_BATCH_ROWS = 5000


class RestoredDatabase(RuntimeError):
    """The source lacks batches the ledger recorded as applied: it was restored from a backup, and applying on
    top of it would leave the erased people it brought back where they are."""


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
        lease_wait_seconds: float = DEFAULT_LEASE_WAIT_SECONDS,
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
        self.lease_wait_seconds = lease_wait_seconds
        self._metadata = sa.MetaData()  # one for all tables, so that their foreign keys can be followed
        self._tables: dict[str, sa.Table] = {}
        self._specs: dict[str, dict[str, ColumnSpec]] = {}
        self._reapply_key_id: str | None = None
        # 16 ASCII characters (96 bits) from the subject key: the key SipHash takes, in the form pandas takes it
        self._secret = base64.b64encode(hmac.digest(keyring.subject.secret, b"verification", "sha256")[:12]).decode()
        marker_metadata.create_all(engine)

    # --- reflection -------------------------------------------------------------------------------------

    def table(self, name: str) -> sa.Table:
        if name not in self._tables:
            table = sa.Table(name, self._metadata, autoload_with=self.engine)
            self._specs[name] = column_specs(table)
            self._tables[name] = table
        return self._tables[name]

    def row_key(self, table: str) -> RowKey:
        return RowKey.of(self.table(table), self.entry(table).primary_key)

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
                        self._specs[table][name],
                        col.options,
                        key_id=self.keyring.active_id,
                        locale=self.config.catalog.locale_of(self.source),
                    )
                except ValueError as exc:
                    raise ValueError(
                        f"{self.config.catalog_file}: sources.{self.source}.tables.{table}.columns.{name}: {exc}"
                    ) from None

    def apply(self, plan: Plan) -> ApplyResult:
        """Apply the plan's entries for this source under the source's lease (taken here unless the run holds
        it already, and then kept: the daily run lets go after its check, a request when it is done)."""
        with holding(
            self.control,
            [source_lease(self.source)],
            self.run_id,
            seconds=lease_seconds(),
            wait_seconds=self.lease_wait_seconds,
            what=f"writing to the {self.source} database",
        ):
            return self._apply(plan)

    def _apply(self, plan: Plan) -> ApplyResult:
        prepare_ledger(sum(len(frame) for (s, _), frame in plan.entries.items() if s == self.source), self.batch_rows)
        self.check_not_restored()
        result = ApplyResult(self.source)
        result.recovered_batches = self.recover()
        tables = [t for (s, t) in plan.entries if s == self.source]
        self.check_anonymizers(tables)
        held = {t: keys.index.tolist() for (s, t), keys in plan.held_keys.items() if s == self.source and len(keys)}
        entries = self._still_due({table: plan.entries[(self.source, table)] for table in tables}, result)
        by_table = {table: entries[table] for table in self._order(tables)}
        writer = LedgerWriter(
            self.control,
            self.config.policy,
            run_id=self.run_id,
            as_of=self.as_of,
            source=self.source,
            key_id=self.keyring.active_id,
        )
        writer.add_rules(by_table.values())
        batches = RunBatches(by_table, self.batch_rows)
        held_rows = self._held_rows(held, [table for table, frame in by_table.items() if len(frame)], result)
        with open_ledger(writer, batches, held_rows) as ledger:
            result.verification.held.update(held_rows.take_first())
            for batch in batches():
                ledger.recorded(batch)
                fault("after_ledger", batch.number)
                ops = row_operations(batch.entries)
                self._execute(batch.table, ops, batch.batch_id, result.verification, batch.number)
                ledger.applied(batch)
                fault("after_source", batch.number)
                outcome = result.tables.setdefault(batch.table, TableOutcome())
                outcome.deleted += len(ops.deletes)
                outcome.updated += len({pk for pks in [*ops.clears.values(), *ops.pseudonymise.values()] for pk in pks})
                outcome.entries += len(batch.entries)
                result.batches += 1
                if self.progress is not None:
                    self.progress(batch.table, outcome.entries, len(by_table[batch.table]))
        result.verification.held.update(ledger.held)
        return result

    def _still_due(self, entries: dict[str, pd.DataFrame], result: ApplyResult) -> dict[str, pd.DataFrame]:
        """The daily run's entries without those that changed hands since it read the estate: rows another run
        (a request) changed meanwhile, whose change stands and which the next day plans afresh from what it
        left, and rows of people placed under a restriction or a legal claim meanwhile, which stay as they are.
        A request plans while it holds the leases, so nothing changes under it."""
        read_at = next((lease.acquired_at for lease in held(self.control, [DAILY]) if lease.owner == self.run_id), None)
        if read_at is None:
            return entries
        holds = load_holds(self.control)
        now_held = holds.restricted | holds.legal_claim
        changed = self._changed_by_others(read_at)
        kept: dict[str, pd.DataFrame] = {}
        for table, frame in entries.items():
            stale = frame["subject"].isin(now_held)
            if changed.get(table):
                stale |= frame["pk"].astype(str).isin(changed[table])
            kept[table] = frame[~stale]
            result.left_to_next_day += int(stale.sum())
        return kept

    def _changed_by_others(self, since: dt.datetime) -> dict[str, set[str]]:
        """table -> keys (as the ledger writes them) of this source's rows other runs recorded since `since`."""
        query = (
            sa.select(ledger_batches.c.table_name, ledger_entries.c.pk)
            .join(ledger_batches, ledger_batches.c.batch_no == ledger_entries.c.batch_no)
            .where(
                ledger_batches.c.source == self.source,
                ledger_batches.c.run_id != self.run_id,
                ledger_batches.c.applied_at >= since,
            )
        )
        changed: dict[str, set[str]] = defaultdict(set)
        with self.control.connect() as conn:
            for table, pk in conn.execute(query):
                changed[table].add(pk)
        return changed

    def _order(self, tables: list[str]) -> list[str]:
        """Children before parents, by the foreign keys the database declares, so that no delete is refused
        for a row that another table's row still references (a table referencing itself does not count)."""
        parents = {
            name: {fk.referred_table.name for fk in self.table(name).foreign_key_constraints} - {name}
            for name in tables
        }
        return children_first(tables, parents.__getitem__)

    def _execute(
        self, table_name: str, ops: RowOperations, batch_id: str, ver: Verification | None, batch_number: int = 0
    ) -> None:
        table = self.table(table_name)
        entry = self.entry(table_name)
        key = self.row_key(table_name)
        with self.engine.begin() as conn:
            if ops.deletes:
                delete_keys(conn, table, key.sql, key.to_sql(ops.deletes))
                if ver is not None:
                    ver.deleted.setdefault(table_name, []).extend(ops.deletes)
            for fields, pks in ops.clears.items():
                if ver is not None:
                    self._record_cleared(ver, table_name, fields, pks)
                cleared = {f: self._cleared_value(table_name, f) for f in fields}
                set_constants(conn, table, key.sql, cleared, key.to_sql(pks))
            if ops.pseudonymise:
                self._pseudonymise(conn, table, entry, ops.pseudonymise, ops.subjects, ver)
            fault("inside_source", batch_number)
            conn.execute(marker.insert().values(batch_id=batch_id, applied_at=dt.datetime.now(dt.UTC)))

    @staticmethod
    def _record_cleared(ver: Verification, table: str, fields: Iterable[str], pks: list) -> None:
        """The rows whose fields must hold the cleared value afterwards. That check also proves the original
        is gone, so no digest of it is taken."""
        for f in fields:
            ver.cleared.setdefault(table, {}).setdefault(f, []).extend(pks)

    def _record_originals(self, ver: Verification, table: str, column: str, pks: list, values: list) -> None:
        ver.originals.setdefault(table, {}).setdefault(column, {}).update(digest_map(self._secret, pks, values))

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
        groups: dict[tuple[str, ...], list[object]],
        subjects: dict[object, str],
        ver: Verification | None,
    ) -> None:
        """A batch's pseudonymised rows at once: one read, one anonymiser call per column over the rows that
        need it, one bulk update per set of fields."""
        fields = sorted({f for group in groups for f in group})
        wanted = [pk for pks in groups.values() for pk in pks]
        key = self.row_key(table.name)
        read = fetch_typed(conn, table, [*key.columns, *fields], key.sql, key.to_sql(wanted), lock=True)
        if not read[key.columns[0]]:
            return
        frame = pd.DataFrame(
            {"pk": key.from_sql([read[c] for c in key.columns]), **{f: read[f] for f in fields}}, dtype=object
        )
        position = dict(zip(frame["pk"].tolist(), range(len(frame)), strict=True))
        at = {
            group: np.array([position[pk] for pk in pks if pk in position], dtype=np.intp)
            for group, pks in groups.items()
        }
        seeds = frame["pk"].map(subjects).astype(object)
        uses_names = any(anonymizers.get(entry.columns[f].anonymizer).uses_names for f in fields)
        names = self._own_names(conn, table.name, entry, frame["pk"].tolist()) if uses_names else None
        new: dict[str, np.ndarray] = {}
        for f in fields:
            rows_at = np.sort(np.concatenate([where for group, where in at.items() if f in group]))
            new[f] = np.full(len(frame), None, dtype=object)
            new[f][rows_at] = self._column(conn, table, entry, f, frame, rows_at, seeds, names, ver)
        for group, where in at.items():
            columns = [new[f][where].tolist() for f in group]
            keys = key.parts(frame["pk"].iloc[where])
            rows = [(*v, *k) for v, k in zip(zip(*columns, strict=True), keys, strict=True)]
            update_many(conn, table, list(group), key.sql, rows)

    def _column(
        self,
        conn: sa.Connection,
        table: sa.Table,
        entry: TableEntry,
        column: str,
        frame: pd.DataFrame,
        rows_at: np.ndarray,
        seeds: pd.Series,
        names: pd.Series | None,
        ver: Verification | None,
    ) -> list[object]:
        """New values of one column for the rows at the given positions of the batch's frame."""
        col = entry.columns[column]
        anonymizer = anonymizers.get(col.anonymizer)
        spec = self._specs[table.name][column]
        pks = frame["pk"].iloc[rows_at].tolist()
        values = frame[column].iloc[rows_at]
        if anonymizer.name == "clear":
            if ver is not None:
                self._record_cleared(ver, table.name, [column], pks)
            return [self._cleared_value(table.name, column)] * len(rows_at)
        if ver is not None and anonymizer.replaces:
            self._record_originals(ver, table.name, column, pks, values.tolist())
        ctx = Context(
            key=self._key(),
            column=spec,
            seeds=seeds.iloc[rows_at],
            own_names=None if names is None else names.iloc[rows_at],
            options=col.options,
            locale=self.config.catalog.locale_of(self.source),
        )
        result = anonymizer(values, ctx)
        if spec.unique:
            taken = self._collisions(conn, table, column, result, pks)
            if taken:
                result = anonymizer(values, dataclasses.replace(ctx, taken=frozenset(taken)))
        return result.astype(object).where(result.notna(), None).tolist()

    def _collisions(self, conn: sa.Connection, table: sa.Table, column: str, values: pd.Series, pks: list) -> set[str]:
        """New values of a unique column that other rows already hold (checked only for this batch's values)."""
        candidates = values.dropna().unique().tolist()
        if not candidates:
            return set()
        mine = {str(pk) for pk in pks}
        key = self.row_key(table.name)
        found = list(fetch_raw(conn, table, [*key.columns, column], column, candidates))
        return {str(row[-1]) for pk, row in zip(key.of_rows(found), found, strict=True) if str(pk) not in mine}

    def _own_names(self, conn: sa.Connection, table: str, entry: TableEntry, pks: list[object]) -> pd.Series | None:
        """The person's name for scrubbing free text: a name column of the row or of its nearest ancestor."""
        chain = self.config.catalog.parent_chain(self.source, table)
        for depth, name in enumerate(chain):
            candidates = [c for c, spec in self.entry(name).columns.items() if spec.category is Category.NAME]
            if not candidates:
                continue
            tables = [self.table(t) for t in chain[: depth + 1]]
            key = self.row_key(table)
            query = sa.select(*key.order_by(tables[0]), tables[-1].c[candidates[0]]).select_from(tables[0])
            for child, parent in itertools.pairwise(tables):
                link = self.entry(child.name).subject
                assert link.foreign_key is not None  # a table in a parent chain links by foreign key
                query = query.join(parent, child.c[link.foreign_key] == parent.c[self.entry(parent.name).pk])
            found = conn.execute(query.where(key.match(conn, tables[0], pks))).all()
            rows = dict(zip(key.of_rows(found), (r[-1] for r in found), strict=True))
            return pd.Series([rows.get(pk) for pk in pks], dtype=object)
        return None

    # --- verification material --------------------------------------------------------------------------

    def _held_rows(self, held: dict[str, list], written: list[str], result: ApplyResult) -> HeldRows:
        """The checksums of held rows: taken now for tables the run does not write, and for the others before
        their first batch (`written` is in the order of the first batches)."""

        checksum = RowDigests(self.engine, self._secret, {t: (self.table(t), self.row_key(t)) for t in held})
        result.verification.held = {table: checksum(table, held[table]) for table in held if table not in written}
        keys = {table: held[table] for table in written if table in held}
        return HeldRows(keys, checksum, first_table=written[0] if written else None)

    def row_digests(self, conn: sa.Connection, table: str, pks: list) -> dict[str, int]:
        """pk -> keyed digest of the whole row as the driver returns it, for the rows with the given keys."""
        return row_digests(conn, self.table(table), self.row_key(table), self._secret, pks)

    def value_digests(self, conn: sa.Connection, table: str, column: str, pks: list) -> dict[str, int]:
        """pk -> keyed digest of the non-null value in `column`, read typed as anonymising reads it, by key."""
        key = self.row_key(table)
        read = fetch_typed(conn, self.table(table), [*key.columns, column], key.sql, key.to_sql(pks))
        return digest_map(self._secret, key.from_sql([read[c] for c in key.columns]), read[column])

    # --- recovery ---------------------------------------------------------------------------------------

    def check_not_restored(self) -> None:
        """Stop before anything is written if the source's marker table lacks batches the ledger holds as done
        (a batch's marker commits with the batch itself, so only a restore takes one away)."""
        with self.control.connect() as conn:
            done = conn.execute(
                sa.select(ledger_batches.c.batch_id, ledger_batches.c.applied_at).where(
                    ledger_batches.c.source == self.source, ledger_batches.c.status == DONE
                )
            ).all()
        if not done:
            return
        with self.engine.connect() as conn:
            present = set(conn.execute(sa.select(marker.c.batch_id)).scalars())
        missing = [when for batch_id, when in done if batch_id not in present]
        if missing:
            tz = self.config.policy.timezone
            day = min(utc(w) for w in missing).astimezone(tz).date()
            raise RestoredDatabase(
                f"the {self.source} database lacks {len(missing)} of the {len(done)} batches the ledger recorded as "
                f"applied there, the first applied on {day}: it looks restored from a backup, which brings erased "
                f"people back. Nothing was applied; run `retention replay --source {self.source} --since {day}`, "
                "then run again"
            )

    def recover(self) -> int:
        """Finish batches a killed run left pending: mark them done if the source committed, else re-apply.
        Only batches of runs that hold no live lease: a live run's pending batch is its own to finish."""
        with self.control.connect() as conn:
            batches = conn.execute(
                sa.select(ledger_batches.c.batch_id, ledger_batches.c.run_id).where(
                    ledger_batches.c.source == self.source, ledger_batches.c.status == PENDING
                )
            ).all()
        alive = live_owners(self.control) - {self.run_id[:64]} if batches else set()
        pending = [batch_id for batch_id, run_id in batches if run_id not in alive]
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
            self._execute(table, row_operations(entries), batch_id, None)
        finally:
            self._reapply_key_id = None

    def typed_pk(self, table: str, pk: str) -> object:
        """A primary key as the ledger writes it (text) turned back into the column's type."""
        return self.row_key(table).from_text(pk)


def _group(rows: Sequence[sa.RowMapping], key: str) -> dict[str, list[sa.RowMapping]]:
    grouped: dict[str, list[sa.RowMapping]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped

"""Writing the apply step's ledger to the control database, beside the source writes.

Every batch's ledger entries and its 'pending' row in `ledger_batches` are committed before the batch's
source transaction starts, and the batch is set 'done' in a later ledger transaction (`retention.applying`
explains why that order makes a crash harmless). The held rows of a table are checksummed before its first
batch, for the check after apply. Writing a million ledger entries costs about as much as the changes they
record, and neither job writes to the source, so where the platform can fork, a child process does both up
to `LOOKAHEAD` batches ahead, on another core, with its own connections, and the source side waits only for
its word that a batch is recorded. Without fork, or for a single batch, the same work runs inline.

When a run stops early, the child may have recorded up to `LOOKAHEAD` batches past the last one the source
committed. They stay 'pending', and the next run's recovery applies them from their entries, as after a
crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa

from retention.bulk import chunks, insert_columns
from retention.control import DONE, PENDING, ledger_batches, ledger_entries, ledger_rules
from retention.policy import Policy

LOOKAHEAD = 2
CHECKSUM_ROWS = 5000
FAULT_ENV = "RETENTION_FAULT"  # test hook: "<phase>:<batch number>" kills the process with SIGKILL there
_PR_SET_PDEATHSIG = 1

Rule = tuple[str, str, str]  # purpose, rule, legal basis


class LedgerError(RuntimeError):
    """The ledger could not be written: no batch it does not record has touched the source."""


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of one table's plan entries, numbered from 1 in the order the run applies them."""

    number: int
    table: str
    entries: pd.DataFrame
    batch_id: str


Checksum = Callable[[str, list], dict[str, int]]
"""(table, primary keys) -> {pk: keyed digest of the row}."""


class HeldRows:
    """Checksums of the held rows of the tables a run writes, given in the order the run first writes them.
    A table's must all be taken before its first batch; taking them earlier is harmless. If the run's first
    table has held rows, the run's own process takes them (`take_first`) while a writer process starts and
    records the first batches; the ledger takes the others, in pieces of `CHECKSUM_ROWS` rows, so that a
    writer process can take them while it waits for the source (`take_piece`), yet answer soon. A table's
    checksums are handed over whole before its first batch (`before`): a writer process that sent them piece
    by piece would stall on a full pipe while the run is busy with a batch."""

    def __init__(self, keys: dict[str, list], checksum: Checksum, first_table: str | None) -> None:
        self.first = {table: pks for table, pks in keys.items() if table == first_table}
        rest = {table: pks for table, pks in keys.items() if table != first_table}
        self.pending = deque((table, chunk) for table, pks in rest.items() for chunk in chunks(pks, CHECKSUM_ROWS))
        self.taken: dict[str, dict[str, int]] = {}
        self.checksum = checksum

    def take_first(self) -> dict[str, dict[str, int]]:
        return {table: self.checksum(table, pks) for table, pks in self.first.items()}

    def take_piece(self) -> None:
        table, pks = self.pending.popleft()
        self.taken.setdefault(table, {}).update(self.checksum(table, pks))

    def before(self, batch: Batch) -> dict[str, dict[str, int]]:
        """The checksums of the batch's table, if it has held rows and they have not been handed over yet."""
        while any(table == batch.table for table, _ in self.pending):
            self.take_piece()
        return {batch.table: self.taken.pop(batch.table)} if batch.table in self.taken else {}


def fault(phase: str, batch_number: int) -> None:
    """Kill this process at a named point, for the kill-and-resume tests."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == f"{phase}:{batch_number}":
        os.kill(os.getpid(), signal.SIGKILL)


class LedgerWriter:
    """Writes one run's ledger batches for one source."""

    def __init__(self, control: sa.Engine, policy: Policy, *, run_id: str, as_of: dt.date, source: str, key_id: str):
        self.control = control
        self.run_id = run_id
        self.as_of = as_of
        self.source = source
        self.key_id = key_id
        self._by_purpose = {
            name: (name, f"{name}: {p.clock.value} + {p.period}, then {p.action.value}"[:200], p.legal_basis[:250])
            for name, p in policy.purposes.items()
        }
        self._rule_ids: dict[Rule, int] = {}

    def rules(self, entries: pd.DataFrame) -> list[Rule]:
        """(purpose, rule, legal basis) of each entry. Entries may carry their own 'rule' and 'legal_basis'
        (subject requests); otherwise both come from the policy's purpose."""
        purposes = entries["purpose"].tolist()
        if self._own_rules(entries):
            rules = entries["rule"].astype(str).str.slice(0, 200).tolist()
            bases = entries["legal_basis"].astype(str).str.slice(0, 250).tolist()
            return list(zip(purposes, rules, bases, strict=True))
        return [self._by_purpose[p] for p in purposes]

    @staticmethod
    def _own_rules(entries: pd.DataFrame) -> bool:
        return "rule" in entries.columns and "legal_basis" in entries.columns

    def _distinct_rules(self, entries: pd.DataFrame) -> set[Rule]:
        if self._own_rules(entries):
            return set(self.rules(entries))
        return {self._by_purpose[p] for p in entries["purpose"].unique()}

    def add_rules(self, entries: Iterable[pd.DataFrame]) -> None:
        """Make sure `ledger_rules` holds the rules of these entries and learn their ids. Each new rule is
        added in its own transaction: another run may add the same rule at the same time, and the unique
        constraint then keeps one."""
        missing = {rule for frame in entries for rule in self._distinct_rules(frame)} - self._rule_ids.keys()
        if not missing:
            return
        for purpose, rule, basis in missing:
            with contextlib.suppress(sa.exc.IntegrityError), self.control.begin() as conn:
                conn.execute(ledger_rules.insert().values(purpose=purpose, rule=rule, legal_basis=basis))
        with self.control.connect() as conn:
            known = conn.execute(sa.select(ledger_rules).where(ledger_rules.c.purpose.in_({m[0] for m in missing})))
            self._rule_ids.update({(r.purpose, r.rule, r.legal_basis): r.rule_id for r in known})

    def _rule_id_column(self, entries: pd.DataFrame) -> list[int]:
        if self._own_rules(entries):
            return [self._rule_ids[rule] for rule in self.rules(entries)]
        return _each_once(lambda purpose: self._rule_ids[self._by_purpose[purpose]], entries["purpose"].tolist())

    def write(self, batch: Batch, done: list[str]) -> None:
        """The batch's 'pending' row and one entry per plan entry, in one transaction that also sets the
        batches in `done` (committed by the source since the last write) 'done'. The entries' rules must have
        been added (`add_rules`)."""
        entries = batch.entries
        columns = {
            "rule_id": self._rule_id_column(entries),
            "pk": list(map(str, entries["pk"].tolist())),
            "subject": entries["subject"].tolist(),
            "action": entries["action"].tolist(),
            "fields": _each_once(lambda names: ",".join(names), entries["fields"].tolist()),
        }
        with self.control.begin() as conn:
            _set_done(conn, done)
            inserted = conn.execute(
                ledger_batches.insert().values(
                    batch_id=batch.batch_id,
                    run_id=self.run_id,
                    as_of=self.as_of,
                    source=self.source,
                    table_name=batch.table,
                    key_id=self.key_id,
                    applied_at=dt.datetime.now(dt.UTC),
                    status=PENDING,
                )
            )
            batch_no = inserted.inserted_primary_key[0]
            insert_columns(conn, ledger_entries, {"batch_no": [batch_no] * len(entries), **columns})

    def mark_done(self, done: list[str]) -> None:
        if done:
            with self.control.begin() as conn:
                _set_done(conn, done)


def _each_once(function: Callable[[Any], Any], values: list) -> list:
    """`function` of each value, computed once per distinct value (a batch's entries share a few purposes and
    field lists)."""
    results = {value: function(value) for value in dict.fromkeys(values)}
    return [results[value] for value in values]


def _set_done(conn: sa.Connection, done: list[str]) -> None:
    if done:
        conn.execute(ledger_batches.update().where(ledger_batches.c.batch_id.in_(done)).values(status=DONE))


class Ledger(Protocol):
    """What the source side sees: `recorded(batch)` returns once the batch's entries are committed and the
    held rows of its table checksummed (into `held`, table -> digests); `applied(batch)` says the source
    committed it."""

    held: dict[str, dict[str, int]]

    def recorded(self, batch: Batch) -> None: ...

    def applied(self, batch: Batch) -> None: ...


class _InlineLedger:
    def __init__(self, writer: LedgerWriter, held_rows: HeldRows) -> None:
        self.writer = writer
        self.held_rows = held_rows
        self.done: list[str] = []
        self.held: dict[str, dict[str, int]] = {}

    def recorded(self, batch: Batch) -> None:
        self.held.update(self.held_rows.before(batch))
        self.writer.write(batch, self.done)
        self.done = []

    def applied(self, batch: Batch) -> None:
        self.done.append(batch.batch_id)

    def close(self) -> None:
        self.writer.mark_done(self.done)


class _ForkedLedger:
    """The parent's side of the writer process: messages are batch numbers (written) and ('held', table,
    digests) triples one way, batch ids (applied) the other; None closes, an ('error', text) pair reports a
    failure."""

    def __init__(
        self, writer: LedgerWriter, batches: Callable[[], Iterator[Batch]], held_rows: HeldRows, source: sa.Engine
    ) -> None:
        ours, theirs = Pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into the caller's code
            ours.close()
            code = 1
            try:
                _die_with(parent)
                for engine in (writer.control, source):  # new connections; the parent's stay the parent's
                    engine.dispose(close=False)
                _write_ahead(writer, batches(), theirs, held_rows)
                code = 0
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    theirs.send(("error", f"{type(exc).__name__}: {exc}"))
            finally:
                os._exit(code)
        theirs.close()
        self.conn = ours
        self.written = 0
        self.held: dict[str, dict[str, int]] = {}

    def recorded(self, batch: Batch) -> None:
        while self.written < batch.number:
            self.written = self._receive()

    def applied(self, batch: Batch) -> None:
        self._send(batch.batch_id)

    def close(self) -> None:
        try:
            self._send(None)
            while self._receive() != "closed":
                pass
        finally:
            self.conn.close()
            # the child has finished its last transaction; tearing down its copy of this process's memory
            # takes a while, so it is reaped on the side
            threading.Thread(target=os.waitpid, args=(self.pid, 0), daemon=True).start()

    def _send(self, message: str | None) -> None:
        try:
            self.conn.send(message)
        except OSError:
            raise LedgerError(_GONE) from None

    def _receive(self) -> object:
        """The next batch number or 'closed', keeping the checksums that come before it."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                raise LedgerError(_GONE) from None
            if not isinstance(message, tuple):
                return message
            if message[0] != "held":
                raise LedgerError(f"writing the ledger failed: {message[1]}")
            self.held[message[1]] = message[2]


_GONE = (
    "the ledger writer process ended without a word; no batch it did not record was applied, and the next "
    "run finishes the batches it left pending"
)


def _die_with(parent: int) -> None:
    """Have the kernel kill this child when the parent dies (Linux), so a killed run leaves no writer behind
    to race the next run; elsewhere the closed pipe stops it at its next wait."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _write_ahead(writer: LedgerWriter, batches: Iterator[Batch], conn: Connection, held_rows: HeldRows) -> None:
    """The child's loop: write each batch once the source is at most LOOKAHEAD batches behind, passing on
    which batches the source has committed. Held rows are checksummed before the first batch of their table,
    or earlier, while the source is too far behind."""
    done: list[str] = []
    applied = 0
    closing = False
    for batch in batches:
        while not closing and (batch.number - applied > LOOKAHEAD or conn.poll()):
            if held_rows.pending and not conn.poll():
                held_rows.take_piece()
                continue
            message = conn.recv()
            if message is None:
                closing = True
            else:
                done.append(str(message))
                applied += 1
        if closing:
            break
        fault("writer", batch.number)
        for table, digests in held_rows.before(batch).items():
            conn.send(("held", table, digests))
        writer.write(batch, done)
        done = []
        conn.send(batch.number)
    while not closing:
        message = conn.recv()
        closing = message is None
        if not closing:
            done.append(str(message))
    writer.mark_done(done)
    conn.send("closed")


@contextlib.contextmanager
def open_ledger(
    writer: LedgerWriter, batches: Callable[[], Iterator[Batch]], count: int, held_rows: HeldRows, source: sa.Engine
) -> Iterator[Ledger]:
    """The ledger for a run of `count` batches that `batches()` yields, in a writer process where that pays.
    The checksums read the source through `source`, to which a writer process opens its own connections."""
    ledger: _InlineLedger | _ForkedLedger
    if count > 1 and hasattr(os, "fork"):
        ledger = _ForkedLedger(writer, batches, held_rows, source)
    else:
        ledger = _InlineLedger(writer, held_rows)
    try:
        yield ledger
    except BaseException:
        with contextlib.suppress(LedgerError):  # the error that stopped the run is the one to report
            ledger.close()
        raise
    ledger.close()

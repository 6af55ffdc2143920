"""Writing the apply step's ledger to the control database, beside the source writes.

Every batch's ledger entries and its 'pending' row in `ledger_batches` are committed before the batch's
source transaction starts, and the batch is set 'done' in a later ledger transaction (`retention.apply.applier`
explains why that order makes a crash harmless). The held rows of a table are checksummed before its first
batch, for the check after apply. Writing a million ledger entries costs about as much as the changes they
record, and neither job writes to the source, so a writer process (`retention.apply.writer_process`, never
a fork of the run's own process) does both up to `LOOKAHEAD` batches ahead, on another core, with its own
connections, and the source side waits only for its word that a batch is recorded. For no more entries than
one batch holds (however many tables they fall in), or where no writer process can be started, the same work
runs inline.

When a run stops early, the child may have recorded up to `LOOKAHEAD` batches past the last one the source
committed. They stay 'pending', and the next run's recovery applies them from their entries, as after a
crash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from retention.apply import writer_process
from retention.apply.batches import Batch, HeldRows, RunBatches
from retention.apply.ledger_writer import LedgerError, LedgerWriter


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


def writes_ahead(entries: int, batch_rows: int) -> bool:
    """Whether a writer process pays: for more entries than one batch holds. Fewer (a request's few rows in a
    handful of tables, one small batch each) are written inline sooner than a writer process starts."""
    return entries > batch_rows and writer_process.available()


def prepare_ledger(entries: int, batch_rows: int) -> None:
    """Begin starting what a writer process needs when it will be used, so that the start overlaps the work
    before the first batch."""
    if writes_ahead(entries, batch_rows):
        writer_process.warm_up()


@contextlib.contextmanager
def open_ledger(writer: LedgerWriter, batches: RunBatches, held_rows: HeldRows) -> Iterator[Ledger]:
    """The ledger for a run of the batches that `batches()` yields, in a writer process where that pays. A
    writer process takes the held rows' checksums with its own connections to the source."""
    ledger: _InlineLedger | writer_process.LedgerProcess
    if writes_ahead(batches.entries, batches.batch_rows):
        ledger = writer_process.LedgerProcess(writer, batches, held_rows)
    else:
        ledger = _InlineLedger(writer, held_rows)
    try:
        yield ledger
    except BaseException:
        with contextlib.suppress(LedgerError):  # the error that stopped the run is the one to report
            ledger.close()
        raise
    ledger.close()

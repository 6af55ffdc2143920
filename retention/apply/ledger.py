"""Writing the apply step's ledger to the control database, beside the source writes.

Every batch's ledger entries and its 'pending' row in `ledger_batches` are committed before the batch's
source transaction starts, and the batch is set 'done' in a later ledger transaction (`retention.apply.applier`
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
import os
from collections.abc import Callable, Iterator
from typing import Protocol

import sqlalchemy as sa

from retention.apply.batches import Batch, HeldRows
from retention.apply.ledger_writer import LedgerError, LedgerWriter
from retention.apply.writer_process import ForkedLedger


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


@contextlib.contextmanager
def open_ledger(
    writer: LedgerWriter, batches: Callable[[], Iterator[Batch]], count: int, held_rows: HeldRows, source: sa.Engine
) -> Iterator[Ledger]:
    """The ledger for a run of `count` batches that `batches()` yields, in a writer process where that pays.
    The checksums read the source through `source`, to which a writer process opens its own connections."""
    ledger: _InlineLedger | ForkedLedger
    if count > 1 and hasattr(os, "fork"):
        ledger = ForkedLedger(writer, batches, held_rows, source)
    else:
        ledger = _InlineLedger(writer, held_rows)
    try:
        yield ledger
    except BaseException:
        with contextlib.suppress(LedgerError):  # the error that stopped the run is the one to report
            ledger.close()
        raise
    ledger.close()

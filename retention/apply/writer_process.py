"""The ledger writer in a child process: it records batches ahead of the source writes, on another core."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, Pipe

import sqlalchemy as sa

from retention.apply.batches import Batch, HeldRows
from retention.apply.faults import fault
from retention.apply.ledger_writer import LedgerError, LedgerWriter

LOOKAHEAD = 2


_PR_SET_PDEATHSIG = 1


class ForkedLedger:
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
            number = self._receive()
            assert isinstance(number, int), number
            self.written = number

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

"""The ledger writer in a child process: it records batches ahead of the source writes, on another core.

A run's process has threads (Dagster's, the leases' heartbeat, the numerical libraries' pools), so a fork of
it could copy a lock some thread holds into a child where no thread ever releases it, and Python 3.12 and
later warn of it. Writers are therefore forked by a zygote: a new interpreter, started once per process with
the writer's modules loaded and single-threaded, so its forks are safe, warning-free and start in
milliseconds. What a writer needs travels over its pipe, pickled: the ledger writer (the control database as
its URL), the run's batches (this source's plan entries), the held rows to checksum (the source as its URL)
and a test's fault hook. None of it is written to a file or put on a command line, where a URL's password
could be read.

Both die with the run's process: the zygote when its socket to that process closes, and a writer when the
zygote dies (Linux) or, elsewhere, at its next wait on its closed pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe

from retention.apply import faults
from retention.apply.batches import Batch, HeldRows, RunBatches
from retention.apply.ledger_writer import LedgerError, LedgerWriter

LOOKAHEAD = 2


_PR_SET_PDEATHSIG = 1

ZYGOTE = "from retention.apply.writer_process import zygote; zygote()"
"""What the zygote runs: `python -c ZYGOTE FD`, FD being its end of the socket to the run's process."""

_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""NumPy's BLAS starts a thread per core on import; the zygote computes nothing with it and must fork alone."""


def available() -> bool:
    """Whether this interpreter can start a zygote (an embedded Python may name no executable) and the
    platform can fork it and pass it a pipe."""
    return bool(sys.executable) and hasattr(os, "fork") and hasattr(socket, "send_fds")


class _Zygote:
    """The run's process's side of its zygote: a request is one byte and one end of a new writer's pipe."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # this process's sys.path, so that the zygote imports this engine whatever its folder
                env=os.environ | _ONE_THREAD | {"PYTHONPATH": os.pathsep.join(filter(None, sys.path))},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.socket = ours
        self.owner = os.getpid()
        # reaped when it exits, which is when this process closes the socket, at its own end
        threading.Thread(target=self.process.wait, daemon=True).start()

    def usable(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def writer(self) -> Connection:
        """A new writer process, forked by the zygote; this process's end of its pipe."""
        ours, theirs = Pipe()
        try:
            socket.send_fds(self.socket, [b"w"], [theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours


_zygote: _Zygote | None = None
_starting = threading.Lock()


def warm_up() -> None:
    """Start this process's zygote now if it has none, so that its start overlaps the work before a run's
    first batch; later writers of the process are forks of it."""
    global _zygote
    with _starting:
        if _zygote is None or not _zygote.usable():
            _zygote = _Zygote()


def _new_writer() -> Connection:
    global _zygote
    warm_up()
    assert _zygote is not None
    try:
        return _zygote.writer()
    except OSError:  # the zygote died since (killed by hand): one more
        with _starting:
            _zygote = _Zygote()
        return _zygote.writer()


@dataclass(frozen=True)
class _Job:
    writer: LedgerWriter
    batches: RunBatches
    held_rows: HeldRows
    hook: faults.Hook | None


class LedgerProcess:
    """The run's side of a writer process: messages are batch numbers (written) and ('held', table, digests)
    triples one way, batch ids (applied) the other; None closes, an ('error', text) pair reports a failure. The
    job goes first, sent by a thread while the run takes the checksums of its first table."""

    def __init__(self, writer: LedgerWriter, batches: RunBatches, held_rows: HeldRows) -> None:
        job = pickle.dumps(_Job(writer, batches, held_rows, faults.installed()), protocol=pickle.HIGHEST_PROTOCOL)
        self.conn = _new_writer()
        self._sending = threading.Thread(target=self._send_job, args=(job,), daemon=True)
        self._sending.start()
        self.written = 0
        self.held: dict[str, dict[str, int]] = {}

    def _send_job(self, job: bytes) -> None:
        """This process's sys.path, folder and environment (the zygote's are those of when it started), so
        that the writer unpickles what this process can and resolves relative paths as it does; then the job.
        A writer that dies first is noticed by the run's next wait for it."""
        with contextlib.suppress(OSError):
            self.conn.send((sys.path, os.getcwd(), dict(os.environ)))
            self.conn.send_bytes(job)

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

    def _send(self, message: str | None) -> None:
        self._sending.join()  # the job is the first message; nothing may interleave with it
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


def zygote() -> None:
    """The zygote: with the writer's modules loaded, fork a writer for each pipe the run's process sends, and
    exit when that process closes the socket (it ended, or was killed)."""
    import retention.apply.digests  # noqa: F401 -- loaded once here rather than in every writer

    requests = socket.socket(fileno=int(sys.argv[1]))
    me = os.getpid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the writers
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(requests, 64, 8)
        except OSError:
            os._exit(1)
        if not message:
            os._exit(0)
        for fd in fds:
            if os.fork() == 0:
                requests.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _serve(Connection(fd), me)
            os.close(fd)


def _serve(conn: Connection, zygote_pid: int) -> None:
    """A writer: receive the job, write ahead, and exit without returning into the zygote's loop."""
    code = 1
    try:
        _die_with(zygote_pid)
        sys.path[:], folder, environment = conn.recv()
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environment)
        job = pickle.loads(conn.recv_bytes())
        faults.install(job.hook)
        _write_ahead(job.writer, job.batches(), conn, job.held_rows)
        code = 0
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(code)


def _die_with(zygote_pid: int) -> None:
    """Have the kernel kill this writer when the zygote dies (Linux), which it does when the run's process
    dies, so a killed run leaves no writer behind to race the next run. A zygote that died before this took
    effect is no longer the writer's parent."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote_pid:
        os._exit(1)


def _write_ahead(writer: LedgerWriter, batches: Iterator[Batch], conn: Connection, held_rows: HeldRows) -> None:
    """The writer's loop: write each batch once the source is at most LOOKAHEAD batches behind, passing on
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
        faults.fault("writer", batch.number)
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

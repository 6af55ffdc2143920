"""Leases in the control database: who may write what right now, and since when nobody has heard of them.

A lease names a thing (`DAILY`, a source's writes, one request, one person) and its owner (a run id). It lives
until `expires_at`; its owner's heartbeat moves that forward every third of the lease's length. A process that
is killed stops beating, so its leases expire and another run takes them over (and with them the batches the
dead run left pending, `live_owners`). Taking leases is one transaction for all names, so two runs never
deadlock each other; a run that already owns a name renews it. Times are UTC from the machine's clock: the
machines sharing a control database must keep their clocks within a small fraction of a lease's length.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from retention.config.settings import whole_number
from retention.rules.calendar import utc
from retention.storage.schema import leases

DAILY = "daily"
"""The daily run's lease: one daily run at a time over the whole estate."""

LEASE_SECONDS_ENV = "RETENTION_LEASE_SECONDS"

DEFAULT_LEASE_SECONDS = 120


def source_lease(source: str) -> str:
    """Writes to one source database: the daily apply and a request's apply take turns."""
    return f"source:{source}"


def request_lease(request_id: int) -> str:
    return f"request:{request_id}"


SUBJECT_PREFIX = "subject:"


def subject_lease(subject: str) -> str:
    """One person (a subject key, or a token nobody is tied to yet): one request for them at a time."""
    return f"{SUBJECT_PREFIX}{subject}"


def lease_seconds() -> int:
    """How long a lease lives without a heartbeat (RETENTION_LEASE_SECONDS, default 120): how soon a killed run's
    work is taken over, and how long a paused process may go unheard before it loses its leases."""
    return whole_number(LEASE_SECONDS_ENV, DEFAULT_LEASE_SECONDS, 2, 86_400, "seconds")


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime
    expires_at: dt.datetime

    def describe(self, now: dt.datetime | None = None) -> str:
        moment = now or dt.datetime.now(dt.UTC)
        quiet = max(0, int((moment - self.heartbeat_at).total_seconds()))
        return (
            f"run {self.owner} (since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, last heard of {quiet} s ago, "
            f"taken over if silent until {self.expires_at:%H:%M:%S} UTC)"
        )


class LeaseBusy(RuntimeError):
    """Another live run holds a lease this one needs; the message names that run."""

    def __init__(self, holder: Lease, what: str) -> None:
        self.holder = holder
        super().__init__(f"{what} is held by {holder.describe()}")


def _lease(row: sa.Row) -> Lease:
    return Lease(row.name, row.owner, utc(row.acquired_at), utc(row.heartbeat_at), utc(row.expires_at))


def held(control: sa.Engine, names: Collection[str] | None = None) -> list[Lease]:
    """The leases held now (live or expired but not yet taken over), of the given names or all."""
    query = sa.select(leases)
    if names is not None:
        query = query.where(leases.c.name.in_(sorted(names)))
    with control.connect() as conn:
        return [_lease(r) for r in conn.execute(query)]


def live_owners(control: sa.Engine) -> set[str]:
    """Runs that hold a lease that has not expired: their pending work is theirs to finish, nobody else's."""
    now = dt.datetime.now(dt.UTC)
    return {lease.owner for lease in held(control) if lease.expires_at > now}


def acquire(
    control: sa.Engine,
    names: Collection[str],
    owner: str,
    *,
    seconds: int,
    wait_seconds: float = 0,
    what: str = "the lease",
    finished: Callable[[str], bool] | None = None,
) -> list[Lease]:
    """Take every name for `owner`, or none, waiting up to `wait_seconds` for live holders to let go.

    A holder whose lease expired, or that `finished` says has ended, is taken over; those leases are returned
    (a killed run to report). Raises LeaseBusy naming the live holder when the wait is over.
    """
    wanted = sorted(set(names))
    give_up = time.monotonic() + wait_seconds
    while True:
        try:
            return _try_acquire(control, wanted, owner[:64], seconds, what, finished)
        except LeaseBusy:
            if time.monotonic() >= give_up:
                raise
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            if time.monotonic() >= give_up + 30:  # a race with another taker, or SQLite busy: try again
                raise
        time.sleep(min(0.5, max(0.05, seconds / 10)))


def _try_acquire(
    control: sa.Engine,
    names: list[str],
    owner: str,
    seconds: int,
    what: str,
    finished: Callable[[str], bool] | None,
) -> list[Lease]:
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(seconds=seconds)
    with control.begin() as conn:
        current = {r.name: _lease(r) for r in conn.execute(sa.select(leases).where(leases.c.name.in_(names)))}
        others = [lease for lease in current.values() if lease.owner != owner]
        gone = [
            lease for lease in others if lease.expires_at <= now or (finished is not None and finished(lease.owner))
        ]
        busy = [lease for lease in others if lease not in gone]
        if busy:
            raise LeaseBusy(busy[0], what)
        for lease in gone:
            taken = conn.execute(
                leases.delete().where(leases.c.name == lease.name, leases.c.owner == lease.owner)
            ).rowcount
            if taken != 1:
                raise sa.exc.IntegrityError("lease taken meanwhile", None, Exception(lease.name))
        mine = [n for n in names if n in current and current[n].owner == owner]
        if mine:
            conn.execute(
                leases.update()
                .where(leases.c.name.in_(mine), leases.c.owner == owner)
                .values(heartbeat_at=now, expires_at=expires)
            )
        new = [n for n in names if n not in mine]
        if new:
            conn.execute(
                leases.insert(),
                [
                    {"name": n, "owner": owner, "acquired_at": now, "heartbeat_at": now, "expires_at": expires}
                    for n in new
                ],
            )
    return gone


def renew(control: sa.Engine, owner: str, *, seconds: int) -> int:
    """Move every lease of `owner` forward; how many it holds (0: they were all taken over, or released)."""
    now = dt.datetime.now(dt.UTC)
    with control.begin() as conn:
        return conn.execute(
            leases.update()
            .where(leases.c.owner == owner[:64])
            .values(heartbeat_at=now, expires_at=now + dt.timedelta(seconds=seconds))
        ).rowcount


def release(control: sa.Engine, owner: str, names: Collection[str] | None = None) -> None:
    """Let go of the owner's leases (of the given names, or all)."""
    query = leases.delete().where(leases.c.owner == owner[:64])
    if names is not None:
        query = query.where(leases.c.name.in_(sorted(names)))
    with control.begin() as conn:
        conn.execute(query)


@contextmanager
def heartbeat(control: sa.Engine, owner: str, *, seconds: int) -> Iterator[None]:
    """Renew the owner's leases every third of their length while the block runs, in a daemon thread (a killed
    process beats no more). A failed renewal is retried at the next beat; the lease lasts three beats."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(seconds / 3):
            try:
                renew(control, owner, seconds=seconds)
            except sa.exc.SQLAlchemyError:
                continue

    thread = threading.Thread(target=beat, name=f"lease-heartbeat-{owner[:12]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextmanager
def holding(
    control: sa.Engine,
    names: Collection[str],
    owner: str,
    *,
    seconds: int,
    wait_seconds: float = 0,
    what: str = "the lease",
    keep: bool = False,
) -> Iterator[list[Lease]]:
    """Take the names, beat while the block runs, and let go afterwards of those it took (unless `keep`): names
    the owner held before stay held, for the step that took them to let go."""
    before = {lease.name for lease in held(control, names) if lease.owner == owner[:64]}
    taken = acquire(control, names, owner, seconds=seconds, wait_seconds=wait_seconds, what=what)
    try:
        with heartbeat(control, owner, seconds=seconds):
            yield taken
    finally:
        if not keep and set(names) - before:
            release(control, owner, set(names) - before)

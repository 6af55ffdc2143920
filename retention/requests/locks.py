"""Per-person locks: never two requests for one person at once."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection

import sqlalchemy as sa

from retention.storage.schema import request_locks


class LockBusy(Exception):
    """Another request for the same person holds a lock."""


def _owner(request_id: int) -> str:
    return f"request:{request_id}"


def acquire_locks(
    control: sa.Engine, request_id: int, keys: Collection[str], *, wait_seconds: float, stale_after: dt.timedelta
) -> None:
    """Take all keys or none (one transaction, so two requests never deadlock); wait up to `wait_seconds`.

    Locks older than `stale_after` are taken over: they belong to a run that was killed.
    """
    owner = _owner(request_id)
    keys = sorted(set(keys))
    if not keys:
        return
    give_up = time.monotonic() + wait_seconds
    while True:
        now = dt.datetime.now(dt.UTC)
        try:
            with control.begin() as conn:
                conn.execute(
                    request_locks.delete().where(
                        request_locks.c.lock_key.in_(keys),
                        sa.or_(request_locks.c.acquired_at < now - stale_after, request_locks.c.owner == owner),
                    )
                )
                conn.execute(
                    request_locks.insert(), [{"lock_key": k, "owner": owner, "acquired_at": now} for k in keys]
                )
            return
        except sa.exc.IntegrityError:
            if time.monotonic() >= give_up:
                raise LockBusy(
                    f"request {request_id}: another request for the same person is being carried out"
                ) from None
            time.sleep(0.5)


def release_locks(control: sa.Engine, request_id: int) -> None:
    with control.begin() as conn:
        conn.execute(request_locks.delete().where(request_locks.c.owner == _owner(request_id)))


def locked_keys(control: sa.Engine) -> dict[str, str]:
    """lock key -> owner of every lock held."""
    with control.connect() as conn:
        return dict(conn.execute(sa.select(request_locks.c.lock_key, request_locks.c.owner)).all())

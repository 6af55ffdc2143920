"""Leases in the control database: one live holder per name, all names or none, a silent holder taken over,
a finished one freed at once, and names held before a block kept after it."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from retention.storage.leases import (
    DAILY,
    LeaseBusy,
    acquire,
    held,
    holding,
    lease_seconds,
    live_owners,
    release,
    renew,
    source_lease,
)
from retention.storage.schema import ensure_schema, leases
from tests.databases import ServerDatabases

pytestmark = pytest.mark.servers


@pytest.fixture
def control(databases: ServerDatabases) -> Iterator[sa.Engine]:
    engine = sa.create_engine(databases.new_url("control"))
    ensure_schema(engine)
    yield engine
    engine.dispose()


def owners(control: sa.Engine) -> dict[str, str]:
    return {lease.name: lease.owner for lease in held(control)}


def expire(control: sa.Engine, owner: str) -> None:
    """What a killed process leaves: its leases, no longer renewed, past their expiry."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with control.begin() as conn:
        conn.execute(leases.update().where(leases.c.owner == owner).values(expires_at=past))


def test_a_live_holder_refuses_a_second_owner_and_is_named(control: sa.Engine) -> None:
    assert acquire(control, [DAILY], "run-a", seconds=60) == []
    with pytest.raises(LeaseBusy, match="held by run run-a") as busy:
        acquire(control, [DAILY], "run-b", seconds=60, what="the daily run's lease")
    assert str(busy.value).startswith("the daily run's lease is held by run run-a (since ")
    assert owners(control) == {DAILY: "run-a"}


def test_all_names_or_none(control: sa.Engine) -> None:
    acquire(control, [source_lease("crm")], "run-a", seconds=60)
    with pytest.raises(LeaseBusy):
        acquire(control, [source_lease("billing"), source_lease("crm")], "run-b", seconds=60)
    assert owners(control) == {source_lease("crm"): "run-a"}  # billing was not taken half-way


def test_the_owner_renews_what_it_holds(control: sa.Engine) -> None:
    acquire(control, [DAILY], "run-a", seconds=5)
    first = held(control)[0]
    time.sleep(0.05)
    assert acquire(control, [DAILY, source_lease("crm")], "run-a", seconds=60) == []
    again = {lease.name: lease for lease in held(control)}
    assert again[DAILY].acquired_at == first.acquired_at
    assert again[DAILY].expires_at > first.expires_at
    assert renew(control, "run-a", seconds=60) == 2
    assert renew(control, "run-b", seconds=60) == 0


def test_an_expired_lease_is_taken_over_and_returned(control: sa.Engine) -> None:
    acquire(control, [DAILY, source_lease("crm")], "killed", seconds=60)
    expire(control, "killed")
    assert live_owners(control) == set()
    taken = acquire(control, [DAILY], "run-b", seconds=60)
    assert [(lease.name, lease.owner) for lease in taken] == [(DAILY, "killed")]
    assert owners(control) == {DAILY: "run-b", source_lease("crm"): "killed"}
    assert live_owners(control) == {"run-b"}


def test_a_holder_known_to_have_finished_is_taken_over_at_once(control: sa.Engine) -> None:
    acquire(control, [DAILY], "ended", seconds=600)
    with pytest.raises(LeaseBusy):
        acquire(control, [DAILY], "run-b", seconds=60, finished=lambda owner: False)
    taken = acquire(control, [DAILY], "run-b", seconds=60, finished=lambda owner: owner == "ended")
    assert [lease.owner for lease in taken] == ["ended"]
    assert owners(control) == {DAILY: "run-b"}


def test_a_waiting_taker_gets_the_lease_when_the_holder_lets_go(control: sa.Engine) -> None:
    acquire(control, [DAILY], "run-a", seconds=60)
    threading.Timer(0.5, release, args=(control, "run-a")).start()
    acquire(control, [DAILY], "run-b", seconds=60, wait_seconds=20)
    assert owners(control) == {DAILY: "run-b"}


def test_holding_lets_go_only_of_what_it_took(control: sa.Engine) -> None:
    acquire(control, [DAILY], "run-a", seconds=60)
    with holding(control, [DAILY, source_lease("crm")], "run-a", seconds=60):
        assert owners(control) == {DAILY: "run-a", source_lease("crm"): "run-a"}
    assert owners(control) == {DAILY: "run-a"}


def test_the_heartbeat_keeps_a_short_lease_alive(control: sa.Engine) -> None:
    with holding(control, [DAILY], "run-a", seconds=2):
        time.sleep(3.5)  # longer than the lease: only the heartbeat keeps it
        with pytest.raises(LeaseBusy):
            acquire(control, [DAILY], "run-b", seconds=2)
    assert owners(control) == {}


def test_two_takers_at_once_one_wins(control: sa.Engine) -> None:
    won: list[str] = []
    lost: list[str] = []
    start = threading.Barrier(4)

    def take(owner: str) -> None:
        start.wait()
        try:
            acquire(control, [DAILY], owner, seconds=60)
            won.append(owner)
        except LeaseBusy:
            lost.append(owner)

    threads = [threading.Thread(target=take, args=(f"run-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 3
    assert owners(control) == {DAILY: won[0]}


@pytest.mark.parametrize("text", ["0", "1", "abc", "-5", "86401", "3.5"])
def test_a_lease_length_out_of_bounds_is_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("RETENTION_LEASE_SECONDS", text)
    with pytest.raises(ValueError, match="RETENTION_LEASE_SECONDS"):
        lease_seconds()

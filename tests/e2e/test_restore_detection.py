"""A restored backup is found by the next run without help: the source's marker table lacks batches the ledger
holds as applied, so the run stops before writing, says to replay and from when, and runs once replayed."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.app import app
from retention.apply.applier import RestoredDatabase
from retention.requests.kinds import RequestKind, RequestStatus
from retention.rules.calendar import utc
from retention.storage.schema import failure_alerts, ledger_batches
from tests.databases import server_databases
from tests.requests_support import ANCHOR, apply_day, customer_identifiers, demo_estate, estate_contents, rows_of


def _file(url: str) -> Path:
    database = sa.make_url(url).database
    assert database is not None
    return Path(database)


def test_a_restored_source_stops_the_run_until_it_is_replayed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=40, seed=13)
        apply_day(demo, ANCHOR - dt.timedelta(days=200))
        backup = tmp_path / "enrolment-backup.db"
        shutil.copyfile(_file(demo.urls["enrolment"]), backup)
        apply_day(demo, ANCHOR)
        after = estate_contents(demo.urls)
        shutil.copyfile(backup, _file(demo.urls["enrolment"]))  # the restore
        restored = estate_contents(demo.urls)
        assert restored != after

        with pytest.raises(RestoredDatabase) as stopped:
            apply_day(demo, ANCHOR + dt.timedelta(days=1))
        message = str(stopped.value)
        assert "the enrolment database lacks" in message and "it looks restored from a backup" in message
        since = re.search(r"retention replay --source enrolment --since (\d{4}-\d{2}-\d{2})", message)
        assert since is not None, message
        assert estate_contents(demo.urls) == restored, "nothing is written on top of a restored database"

        result = CliRunner().invoke(app, ["replay", "--source", "enrolment", "--since", since.group(1)])
        assert result.exit_code == 0, result.output
        assert estate_contents(demo.urls) == after
        apply_day(demo, ANCHOR + dt.timedelta(days=1))  # replayed: the daily run goes on


def dump(url: str) -> dict[str, list[dict]]:
    """A backup of every table, as rows: what a restore brings back, on any backend."""
    engine = sa.create_engine(url)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            return {t.name: [dict(r._mapping) for r in conn.execute(sa.select(t))] for t in md.sorted_tables}
    finally:
        engine.dispose()


def restore(url: str, backup: dict[str, list[dict]]) -> None:
    """Put the backup back: every table as it was, and no table the backup did not have (the marker table)."""
    engine = sa.create_engine(url)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        with engine.begin() as conn:
            for table in reversed(md.sorted_tables):
                conn.execute(table.delete())
            for table in md.sorted_tables:
                if table.name not in backup:
                    table.drop(conn)
                elif backup[table.name]:
                    conn.execute(table.insert(), backup[table.name])
    finally:
        engine.dispose()


def applied_days_ago(control_url: str, days: int) -> None:
    """Make every batch so far look applied `days` ago: the runs of earlier days, as a real estate has them."""
    engine = sa.create_engine(control_url)
    try:
        with engine.begin() as conn:
            for batch_no, applied_at in conn.execute(sa.select(ledger_batches.c.batch_no, ledger_batches.c.applied_at)):
                conn.execute(
                    ledger_batches.update()
                    .where(ledger_batches.c.batch_no == batch_no)
                    .values(applied_at=utc(applied_at) - dt.timedelta(days=days))
                )
    finally:
        engine.dispose()


def alert_texts(control_url: str) -> list[str]:
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(failure_alerts.c.error)).scalars())
    finally:
        engine.dispose()


@pytest.mark.servers
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_late_since_still_replays_every_batch_the_restore_took_away(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backup, then an erasure and a day's run ten days ago and one today; restore. The next run refuses with
    the replay to run and records an alert; a replay told the backup is a day younger than it is still
    replays the batches of ten days ago, so the erased person stays erased, and the run goes on afterwards."""
    with server_databases(backend, tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=40, seed=13)
        backup = dump(demo.urls["enrolment"])
        view = demo.view()
        person = sorted(set(view.tagged[("enrolment", "customers")].frame["subject"]))[3]
        given = customer_identifiers(demo.urls["enrolment"], rows_of(view, {person})[("enrolment", "customers")])
        request = demo.register(RequestKind.ERASURE, email=given["email"])
        assert demo.carry_out(request).status is RequestStatus.DONE
        apply_day(demo, ANCHOR - dt.timedelta(days=200))
        applied_days_ago(demo.control_url, 10)
        apply_day(demo, ANCHOR)
        after = estate_contents(demo.urls)
        restore(demo.urls["enrolment"], backup)
        assert estate_contents(demo.urls) != after
        assert given["email"] in str(estate_contents({"enrolment": demo.urls["enrolment"]})), "the person is back"

        runner = CliRunner()
        refused = runner.invoke(app, ["run", "--as-of", str(ANCHOR + dt.timedelta(days=1)), "--confirm-large-plan"])
        assert refused.exit_code == 1, refused.output
        assert "retention replay --source enrolment" in " ".join(refused.output.split()), refused.output
        assert any("retention replay --source enrolment" in text for text in alert_texts(demo.control_url))
        assert estate_contents(demo.urls)[("enrolment", "customers")] == {
            pk: tuple(row.values()) for pk, row in ((r["customer_id"], r) for r in backup["customers"])
        }, "nothing is written on top of a restored database"

        late = (dt.datetime.now(demo.config.policy.timezone) - dt.timedelta(days=9)).date()
        replayed = runner.invoke(app, ["replay", "--source", "enrolment", "--since", late.isoformat()])
        assert replayed.exit_code == 0, replayed.output
        assert "lacked batches from before --since" in " ".join(replayed.output.split()), replayed.output
        assert estate_contents(demo.urls) == after
        assert given["email"] not in str(estate_contents(demo.urls))

        again = runner.invoke(app, ["run", "--as-of", str(ANCHOR + dt.timedelta(days=1)), "--confirm-large-plan"])
        assert again.exit_code == 0, again.output

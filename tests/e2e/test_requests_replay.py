"""Replay after a restore: copy the databases (the backup), let daily runs and requests change them, restore
the copy, replay the ledger, and the restored databases equal the changed ones, value for value.

Pseudonyms are deterministic for the key and the subject key, tokens for the key and the value, and each batch
is replayed onto the same state it first met, so replay reproduces exactly what the first apply wrote.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.app import app
from retention.demo.generator import generate_demo_estate
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.replay import replay_source
from retention.storage.schema import replays
from tests.databases import server_databases
from tests.requests_support import ANCHOR, apply_day, customer_identifiers, demo_estate, estate_contents, rows_of


def _file(url: str) -> Path:
    database = sa.make_url(url).database
    assert database is not None, f"{url} names no database file"
    return Path(database)


def _files(urls: dict[str, str]) -> dict[str, Path]:
    return {source: _file(url) for source, url in urls.items()}


def test_replay_after_restore_reproduces_the_erased_databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=37)
        apply_day(demo, ANCHOR - dt.timedelta(days=200))  # before the backup: replay must leave these alone
        backup = tmp_path / "backup"
        backup.mkdir()
        for source, path in _files(demo.urls).items():
            shutil.copyfile(path, backup / f"{source}.db")

        view = demo.view()
        everywhere = view.index.subjects.loc[view.index.subjects["sources"] == 3, "subject"].tolist()
        customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
        people = [s for s in sorted(everywhere) if s in customers][:3]
        assert len(people) == 3
        ids = [
            customer_identifiers(demo.urls["enrolment"], rows_of(view, {s})[("enrolment", "customers")]) for s in people
        ]
        apply_day(demo, ANCHOR)
        for kind, given in (
            (RequestKind.ERASURE, {"email": ids[0]["email"]}),
            (RequestKind.ERASURE, {"customer_number": ids[1]["customer_number"]}),
            (RequestKind.MARKETING_OBJECTION, {"customer_number": ids[2]["customer_number"]}),
        ):
            assert demo.carry_out(demo.register(kind, **given)).status is RequestStatus.DONE
        erased = estate_contents(demo.urls)

        for source, path in _files(demo.urls).items():  # restore the backup
            shutil.copyfile(backup / f"{source}.db", path)
        assert estate_contents(demo.urls) != erased

        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
        runner = CliRunner()
        for source in demo.urls:
            result = runner.invoke(app, ["replay", "--source", source, "--since", since])
            assert result.exit_code == 0, result.output
            assert "batches replayed" in result.output
        assert estate_contents(demo.urls) == erased

        engine = sa.create_engine(demo.control_url)
        try:
            with engine.connect() as conn:
                recorded = conn.execute(sa.select(replays)).mappings().all()
        finally:
            engine.dispose()
        assert len(recorded) == 3 and all(r["status"] == "done" and r["mismatched_rows"] == 0 for r in recorded)
        assert all(r["batches_already_there"] > 0 for r in recorded), "batches from before the backup are skipped"
        assert sum(r["batches_replayed"] for r in recorded) > 0

        # replaying again changes nothing: every batch is in the database now
        with demo.connect() as estate:
            assert estate.control is not None
            again = replay_source(
                demo.config,
                "enrolment",
                estate.sources["enrolment"],
                estate.control,
                demo.keyring,
                dt.date.fromisoformat(since),
                run_id="again",
            )
        assert again.batches_replayed == 0 and estate_contents(demo.urls) == erased

        # restoring some other database by mistake: no row whose person differs is touched
        other = tmp_path / "other"
        other.mkdir()
        generate_demo_estate({"enrolment": f"sqlite:///{other / 'enrolment.db'}"}, people=60, seed=99, anchor=ANCHOR)
        shutil.copyfile(other / "enrolment.db", _files(demo.urls)["enrolment"])
        foreign = estate_contents({"enrolment": demo.urls["enrolment"]})
        result = runner.invoke(app, ["replay", "--source", "enrolment", "--since", since])
        assert result.exit_code == 1 and "belongs to another person" in " ".join(result.output.split())
        assert estate_contents({"enrolment": demo.urls["enrolment"]}) == foreign

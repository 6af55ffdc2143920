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
from tests.databases import server_databases
from tests.requests_support import ANCHOR, apply_day, demo_estate, estate_contents


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

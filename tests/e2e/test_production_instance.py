"""The daily job on the production instance: DAGSTER_HOME holds the shipped `dagster.production.yaml`, so
Dagster keeps the run, its events and its materialisations in PostgreSQL, not in files under DAGSTER_HOME.

The run is `retention run` in a subprocess, as an operator starts it; the estate is a small SQLite demo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from assets.applying import apply_asset_key
from assets.snapshots import snapshot_asset_key
from pipelines.definitions import DAILY_JOB
from pipelines.instance import PRODUCTION_YAML, shipped_yaml
from pipelines.partitions import PARTITION_TAG
from retention.config import settings
from retention.config.keys import load_keyring
from retention.config.loading import load_config
from retention.daily.flow import compute_plan
from retention.storage.engines import Estate
from tests.databases import server_databases
from tests.e2e.test_kill_resume import DAY, ledger_count, make_estate, run

pytestmark = pytest.mark.servers

SOURCES = ("enrolment", "newsletter", "elearning")


@contextmanager
def environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Iterator[None]:
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield


def planned(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, day: dt.date) -> dict[tuple[str, str], pd.DataFrame]:
    """The plan's entries for the day, by (source, table), as the daily job would compute them now."""
    with environment(monkeypatch, env):
        config = load_config(settings.catalog_path(), settings.policy_path())
        keyring, _ = load_keyring(demo=False)
        estate = Estate.connect(config.catalog)
        try:
            plan = compute_plan(config, estate, keyring, day).plan
        finally:
            estate.dispose()
    return {key: frame for key, frame in plan.entries.items() if len(frame)}


def existing_keys(url: str, table: str, keys: list) -> set:
    engine = sa.create_engine(url)
    try:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
        (pk,) = reflected.primary_key.columns
        with engine.connect() as conn:
            return set(conn.execute(sa.select(pk).where(pk.in_(keys))).scalars())
    finally:
        engine.dispose()


def test_daily_run_on_the_production_instance_stores_in_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server_databases("sqlite", tmp_path) as estate_databases, server_databases("postgresql", tmp_path) as server:
        env = make_estate(estate_databases, tmp_path, "prd")
        storage_url = sa.make_url(server.new_url("dagster")).set(drivername="postgresql+psycopg2")
        env["DAGSTER_POSTGRES_URL"] = storage_url.render_as_string(hide_password=False)
        home = Path(env["DAGSTER_HOME"])
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_text(shipped_yaml(PRODUCTION_YAML))

        before = planned(env, monkeypatch, DAY)
        deletes = {
            key: frame.loc[frame["action"] == "delete", "pk"].tolist()
            for key, frame in before.items()
            if (frame["action"] == "delete").any()
        }
        assert deletes, "the demo estate plans no deletion: nothing to check"

        done = run(env)
        output = done.communicate(timeout=600)[0].decode()
        assert done.returncode == 0, output

        with environment(monkeypatch, env), dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
            (record,) = instance.get_run_records(filters=dg.RunsFilter(job_name=DAILY_JOB))
            daily = record.dagster_run
            assert daily.status == dg.DagsterRunStatus.SUCCESS
            assert daily.tags[PARTITION_TAG] == DAY.isoformat()
            events = instance.all_logs(daily.run_id)
            materialised = {
                event.dagster_event.asset_key
                for event in events
                if event.dagster_event is not None
                and event.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
            }
            wanted = {key(source) for source in SOURCES for key in (snapshot_asset_key, apply_asset_key)}
            assert wanted <= materialised, wanted - materialised
            for key in wanted:
                latest = instance.get_latest_materialization_event(key)
                assert latest is not None and latest.run_id == daily.run_id

        # the same run and events are rows of the PostgreSQL database; DAGSTER_HOME holds no run storage
        engine = sa.create_engine(storage_url.set(drivername="postgresql+psycopg"))
        try:
            with engine.connect() as conn:
                runs = conn.execute(sa.text("SELECT count(*) FROM runs WHERE run_id = :id"), {"id": daily.run_id})
                assert runs.scalar_one() == 1
                logged = conn.execute(
                    sa.text("SELECT count(*) FROM event_logs WHERE run_id = :id"), {"id": daily.run_id}
                ).scalar_one()
                assert logged == len(events)
        finally:
            engine.dispose()
        assert not (home / "history").exists() and not (home / "schedules").exists()

        assert ledger_count(env) > 0
        for (source, table), keys in deletes.items():
            url = env[f"RETENTION_{source.upper()}_URL"]
            assert existing_keys(url, table, keys) == set(), f"{source}.{table}: planned deletions still there"
        assert planned(env, monkeypatch, DAY) == {}, "the day's plan is not done"

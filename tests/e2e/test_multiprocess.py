"""The daily job under Dagster's multiprocess executor (RETENTION_EXECUTOR=multiprocess): one process per step
on the persistent local instance, each apply step with its ledger writer process, each step holding the daily
lease of the same run. The databases and the ledger must equal those of a run in one process.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.definitions import DAILY_JOB
from retention.reporting.alerts import KILLED_RUN
from retention.storage.schema import ledger_batches
from tests.databases import server_databases
from tests.e2e.test_kill_resume import alerts_of_kind, estate_state, ledger_rows, make_estate, reference_outcome, run


def batches_by_run_and_source(control_url: str) -> dict[tuple[str, str], int]:
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            query = sa.select(ledger_batches.c.run_id, ledger_batches.c.source, sa.func.count()).group_by(
                ledger_batches.c.run_id, ledger_batches.c.source
            )
            return {(run_id, source): count for run_id, source, count in conn.execute(query)}
    finally:
        engine.dispose()


def test_the_multiprocess_executor_gives_what_one_process_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, rows = reference_outcome("sqlite", tmp_path / "reference")
    with server_databases("sqlite", tmp_path) as databases:
        env = make_estate(databases, tmp_path, "mul") | {"RETENTION_EXECUTOR": "multiprocess"}
        done = run(env)
        output = done.communicate(timeout=600)[0].decode()
        assert done.returncode == 0, output

        assert estate_state(env) == state
        assert ledger_rows(env) == rows

        monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
        with dg.DagsterInstance.get() as instance:
            (record,) = instance.get_run_records(filters=dg.RunsFilter(job_name=DAILY_JOB))
            daily = record.dagster_run
            assert daily.status == dg.DagsterRunStatus.SUCCESS
            events = [e for e in instance.all_logs(daily.run_id) if e.dagster_event is not None]
        started = {e.step_key for e in events if e.dagster_event_type == dg.DagsterEventType.STEP_START}
        workers = {e.step_key for e in events if e.dagster_event_type == dg.DagsterEventType.STEP_WORKER_STARTED}
        assert started and workers == started, "not every step ran in a process of its own"
        step_pids = {e.dagster_event.pid for e in events if e.dagster_event and e.dagster_event.is_step_start}
        assert len(step_pids) == len(started)

        # every source was applied by this run, in several batches (so through a ledger writer process), and
        # no step took the daily lease over from another step of the same run
        batches = batches_by_run_and_source(env["RETENTION_CONTROL_URL"])
        assert {run_id for run_id, _ in batches} == {daily.run_id}
        assert {source for _, source in batches} == {"enrolment", "newsletter", "elearning"}
        assert all(count > 1 for count in batches.values()), batches
        assert alerts_of_kind(env, KILLED_RUN) == []

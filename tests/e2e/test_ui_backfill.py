"""A backfill of three days launched as the Dagster UI launches one (the GraphQL mutation, on the workspace
`make ui` loads) and carried out by the Dagster daemon leaves the databases and the ledger exactly as three
`retention run` days in order do. The daemon's queue runs the backfill's days one at a time, in order.

A day run from the CLI afterwards is a run of the daily job of that code location: the job's page (the same
GraphQL field the UI reads) lists it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from pipelines.instance import local_instance
from pipelines.runner import WORKSPACE_FILE
from retention.storage.leases import DEFAULT_LEASE_SECONDS
from tests.databases import server_databases
from tests.e2e.test_kill_resume import estate_state, ledger_rows, make_estate

ROOT = Path(__file__).resolve().parents[2]
FIRST = dt.date(2026, 2, 27)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(3)]
LOCATION = "pipelines.definitions"
REPOSITORY = "__repository__"

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on UnauthorizedError { message }
  }
}
"""

ASSET_KEYS = """
query { assetNodes { assetKey { path } jobNames } }
"""

JOB_RUNS = """
query ($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { runs { runId tags { key value } status } }
  }
}
"""


def retention(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")} | env
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=300
    )


def graphql(context: WorkspaceProcessContext, query: str, variables: dict | None = None) -> Mapping[str, Any]:
    result = execute_dagster_graphql(context.create_request_context(), query, variables)
    assert not result.errors, result.errors
    return result.data


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        assert daemon.poll() is None, "the daemon stopped"
        backfill = instance.get_backfill(backfill_id)
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        if backfill is not None and backfill.status.value != "REQUESTED" and all(r.is_finished for r in runs):
            return
        time.sleep(2)
    raise AssertionError(f"backfill {backfill_id} did not finish within 15 minutes")


@pytest.mark.slow
def test_a_ui_backfill_equals_the_days_run_in_order_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server_databases("sqlite", tmp_path) as databases:
        by_cli = make_estate(databases, tmp_path, "cli", DEFAULT_LEASE_SECONDS)
        for day in DAYS:
            done = retention(by_cli, "run", "--as-of", day.isoformat(), "--confirm-large-plan")
            assert done.returncode == 0, done.stdout + done.stderr

        by_ui = make_estate(databases, tmp_path, "ui", DEFAULT_LEASE_SECONDS)
        for name, value in by_ui.items():
            monkeypatch.setenv(name, value)  # the code server and the daemon inherit the estate's environment
        with (
            local_instance() as instance,
            WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)])) as context,
        ):
            nodes = graphql(context, ASSET_KEYS)["assetNodes"]
            keys = [{"path": n["assetKey"]["path"]} for n in nodes if "daily_retention" in n["jobNames"]]
            params = {
                "assetSelection": keys,
                "partitionNames": [d.isoformat() for d in DAYS],
                "runConfigData": {"ops": {"retention_plan": {"config": {"confirm_large_plan": True}}}},
            }
            launched = graphql(context, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            daemon = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(WORKSPACE_FILE)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for_backfill(instance, launched["backfillId"], daemon)
            finally:
                daemon.terminate()
                daemon.wait(timeout=60)
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": launched["backfillId"]}))
            assert sorted(r.tags["dagster/partition"] for r in runs) == [d.isoformat() for d in DAYS]
            assert all(r.status is dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
            records = [instance.get_run_record_by_id(r.run_id) for r in runs]
            started = sorted((r for r in records if r is not None), key=lambda r: r.start_time or 0)
            assert [r.dagster_run.tags["dagster/partition"] for r in started] == [d.isoformat() for d in DAYS]

            assert estate_state(by_ui) == estate_state(by_cli)
            assert ledger_rows(by_ui) == ledger_rows(by_cli)

            later = retention(by_ui, "run", "--as-of", (DAYS[-1] + dt.timedelta(days=1)).isoformat())
            assert later.returncode == 0, later.stdout + later.stderr
            selector = {
                "pipelineName": "daily_retention",
                "repositoryName": REPOSITORY,
                "repositoryLocationName": LOCATION,
            }
            shown = graphql(context, JOB_RUNS, {"selector": selector})["pipelineOrError"]
            assert shown["__typename"] == "Pipeline", shown
            partitions = [
                next(t["value"] for t in run["tags"] if t["key"] == "dagster/partition") for run in shown["runs"]
            ]
            assert (DAYS[-1] + dt.timedelta(days=1)).isoformat() in partitions, partitions

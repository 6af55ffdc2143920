"""Dagster's side of the leases (`retention.storage.leases`): which runs have ended, and what a takeover reports.

A lease whose owner is a run this instance knows to have ended is free at once: a daily run under the
multiprocess executor leaves its lease to be taken over rather than released, since no step knows it is the
last. A lease that expired while its run still shows as started belonged to a killed process: that run is
marked failed here (nothing else would: no run worker is left to report it), and an alert says what was taken
over, so a killed run is never silent.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from pipelines.partitions import PARTITION_TAG
from retention.reporting.alerts import KILLED_RUN, Alert, raise_alerts
from retention.storage.leases import Lease

JOB_TAG = "retention/job"
"""Tag of the daily job's runs (`DAILY_TAG_VALUE`): what the run queue limits to one at a time."""

DAILY_TAG_VALUE = "daily"

PLAN_TAG_VALUE = "plan"
"""Tag of the plan-only job's runs: dry runs, which hold no daily lease."""


def holds_daily_lease(run: dg.DagsterRun) -> bool:
    """Every run of an as-of day but the plan-only job's: the daily job's, and those a backfill of assets
    selected in the UI starts, which are runs of no job of ours."""
    return PARTITION_TAG in run.tags and run.tags.get(JOB_TAG) != PLAN_TAG_VALUE


def run_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True when this instance knows the run and it has finished (succeeded, failed or was cancelled)."""
    run = instance.get_run_by_id(run_id)
    return run is not None and run.is_finished


def report_takeovers(
    instance: dg.DagsterInstance, control: sa.Engine, taken: list[Lease], *, by: str, job_name: str
) -> list[Alert]:
    """For each lease taken over from a run that did not finish: mark that run failed and record an alert."""
    now = dt.datetime.now(dt.UTC)
    alerts = []
    for owner in sorted({lease.owner for lease in taken}):
        run = instance.get_run_by_id(owner)
        if run is not None and run.is_finished:
            continue  # it ended and reported itself; only its lease was left
        names = ", ".join(sorted(lease.name for lease in taken if lease.owner == owner))
        quiet = max(int((now - lease.heartbeat_at).total_seconds()) for lease in taken if lease.owner == owner)
        message = (
            f"not heard of for {quiet} s, so it was taken to have been killed; run {by} took over {names} and "
            "finishes its pending batches"
        )
        if run is not None:
            instance.report_run_failed(run, message=message)
        alerts.append(
            Alert(
                owner,
                run.job_name if run is not None else job_name,
                run.tags.get(PARTITION_TAG) if run is not None else None,
                KILLED_RUN,
                names,
                message,
                now,
            )
        )
    return raise_alerts(control, alerts) if alerts else []

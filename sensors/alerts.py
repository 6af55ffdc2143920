"""The run-failure sensor of the daily job: every failed run, failed step and failed blocking check is recorded
in the control database (the compliance report lists them) and posted to RETENTION_ALERT_WEBHOOK if set."""

import datetime as dt
from typing import TYPE_CHECKING

import dagster as dg
import sqlalchemy as sa

from pipelines.partitions import PARTITION_TAG
from retention.config.loading import load_config
from retention.reporting.alerts import BLOCKING_CHECK, RUN_FAILURE, STEP_FAILURE, Alert, raise_alerts, safe_error_text
from retention.storage.engines import control_engine as open_control

if TYPE_CHECKING:
    # what dg.define_asset_job returns; Dagster does not export the class at its top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def _root_error(event: dg.DagsterEvent) -> tuple[str | None, str | None]:
    """The innermost error of a step failure: Dagster wraps user errors in its own."""
    data = event.step_failure_data if event.is_step_failure else None
    error = data.error if data is not None else None
    while error is not None and error.cause is not None:
        error = error.cause
    return (error.cls_name, error.message) if error is not None else (None, None)


def run_alerts(instance: dg.DagsterInstance, run: dg.DagsterRun, *, now: dt.datetime | None = None) -> list[Alert]:
    """The alerts a failed run raises: each failed blocking check, each failed step, or the run itself."""
    now = now or dt.datetime.now(dt.UTC)
    partition = run.tags.get(PARTITION_TAG)

    def alert(kind: str, subject: str, error: str) -> Alert:
        return Alert(run.run_id, run.job_name, partition, kind, subject, error, now)

    alerts = []
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.asset_check_evaluation_data if entry.dagster_event else None
        if evaluation is None or evaluation.passed or not evaluation.blocking:
            continue
        if evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        summary = evaluation.metadata.get("summary") or evaluation.metadata.get("problems")
        text = str(summary.value) if summary is not None else "failed"
        subject = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        alerts.append(alert(BLOCKING_CHECK, subject, safe_error_text("BlockingCheckFailed", text)))
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        if event is None:
            continue
        cls_name, message = _root_error(event)
        alerts.append(alert(STEP_FAILURE, event.step_key or "(step)", safe_error_text(cls_name, message)))
    if not alerts:
        alerts.append(alert(RUN_FAILURE, run.job_name, "the run failed before any step ran; see the run in Dagster"))
    return alerts


def control_engine(catalog_path: str, policy_path: str) -> sa.Engine | None:
    """The control database, or None when it cannot be named (the alert is then only posted and logged)."""
    try:
        url = load_config(catalog_path, policy_path).catalog.control_url()
    except Exception:  # a broken configuration must not stop the alert
        return None
    return open_control(url) if url else None


def alert_failed_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, catalog_path: str, policy_path: str
) -> list[Alert]:
    """Record and post the alerts of a failed run; returns the new ones. What the sensor does, callable by
    whatever runs the job without a daemon watching (an in-process run from the CLI)."""
    alerts = run_alerts(instance, run)
    engine = control_engine(catalog_path, policy_path)
    try:
        return raise_alerts(engine, alerts)
    finally:
        if engine is not None:
            engine.dispose()


def build_alert_sensor(
    jobs: "list[dg.JobDefinition | UnresolvedAssetJobDefinition]", catalog_path: str, policy_path: str
) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="daily_run_failure_alert",
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Records every failed daily run, failed step and failed blocking check in the control database "
            "and posts it to RETENTION_ALERT_WEBHOOK when that is set."
        ),
    )
    def daily_run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        for item in alert_failed_run(context.instance, context.dagster_run, catalog_path, policy_path):
            context.log.warning(item.text())

    return daily_run_failure_alert

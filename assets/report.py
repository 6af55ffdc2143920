"""The compliance report asset, downstream of the apply steps, and the same report on demand for the CLI.

The asset runs after every apply step and its blocking verification, so the ledger it counts is the day's
final word; it reads the day's check results from the run's own event log, where Dagster keeps them.
"""

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from assets.applying import apply_asset_key
from assets.planning import RETENTION_PLAN, TAGGED_RECORDS
from pipelines.resources import EstateResource
from retention.config import settings
from retention.config.loading import EstateConfig
from retention.daily.planning import Plan
from retention.daily.tagging import Tagged
from retention.quality.gx import data_docs_index
from retention.reporting.model import CheckRow, ComplianceReport, ReportFiles, gather_report
from retention.reporting.render import render_markdown, write_report

COMPLIANCE_REPORT = dg.AssetKey(["compliance_report"])
PARTITION_TAG = "dagster/partition"
MAX_SUMMARY_CHARS = 400


def check_rows(instance: dg.DagsterInstance, run_id: str) -> list[CheckRow]:
    """Every asset check evaluated in a run, with its value-free summary, as the report lists them."""
    rows = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.asset_check_evaluation_data if entry.dagster_event else None
        if evaluation is None:
            continue
        summary = evaluation.metadata.get("summary") or evaluation.metadata.get("problems")
        text = " ".join(str(summary.value).split()) if summary is not None else ""
        rows.append(
            CheckRow(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                passed=evaluation.passed,
                severity=evaluation.severity.value,
                blocking=bool(evaluation.blocking),
                summary=text[:MAX_SUMMARY_CHARS],
            )
        )
    return sorted(rows, key=lambda r: (r.asset, r.check))


def write_day_report(
    config: EstateConfig,
    control: sa.Engine,
    as_of: dt.date,
    *,
    plan: Plan | None,
    tagged: Tagged | None,
    checks: list[CheckRow],
    checks_note: str,
    notes: list[str] | None = None,
) -> tuple[ComplianceReport, ReportFiles]:
    report = gather_report(
        config,
        control,
        as_of,
        plan=plan,
        tagged=tagged,
        checks=checks,
        checks_note=checks_note,
        docs_index=data_docs_index(),
        notes=notes or [],
    )
    return report, write_report(report, settings.reports_dir())


def build_report_asset(sources: list[str], partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=COMPLIANCE_REPORT,
        ins={"retention_plan": dg.AssetIn(key=RETENTION_PLAN), "tagged_records": dg.AssetIn(key=TAGGED_RECORDS)},
        deps=[apply_asset_key(s) for s in sources],
        group_name="report",
        partitions_def=partitions,
        kinds={"html"},
        description=(
            "The day's compliance report (HTML and Markdown under var/reports): the retention schedule, what the "
            "run did and held back, expiries ahead, subject requests, check results and recent failures."
        ),
    )
    def compliance_report(
        context: dg.AssetExecutionContext, estate: EstateResource, retention_plan: Plan, tagged_records: Tagged
    ) -> dg.MaterializeResult:
        as_of = context.partition_time_window.start.date()
        checks = check_rows(context.instance, context.run_id)
        report, files = write_day_report(
            estate.config,
            estate.estate.control,
            as_of,
            plan=retention_plan,
            tagged=tagged_records,
            checks=checks,
            checks_note=f"Results of run {context.run_id}.",
        )
        context.log.info(f"compliance report for {as_of}: {files.html}")
        return dg.MaterializeResult(
            metadata={
                "report": dg.MetadataValue.md(render_markdown(report)),
                "html": dg.MetadataValue.path(str(files.html)),
                "markdown": dg.MetadataValue.path(str(files.markdown)),
                "actions": dg.MetadataValue.int(report.total_actions),
                "failed_checks": dg.MetadataValue.int(sum(1 for c in checks if not c.passed)),
            }
        )

    return compliance_report


def report_for_day(day: dt.date) -> tuple[ReportFiles, list[str]]:
    """The report of a day from what its latest run stored; computes plan and deadlines afresh if none did.

    Returns the files and notes on where the numbers came from.
    """
    from pipelines.definitions import DAILY_JOB, defs
    from pipelines.runner import local_instance
    from retention.config.loading import load_config
    from retention.storage.engines import control_engine

    config = load_config(settings.catalog_path(), settings.policy_path())
    partition = day.isoformat()
    control_url = config.catalog.control_url()
    if not control_url:
        raise RuntimeError(f"no control database URL; set {config.catalog.control_url_env}")
    control = control_engine(control_url)
    notes: list[str] = []
    try:
        with local_instance() as instance:
            runs = instance.get_runs(
                filters=dg.RunsFilter(job_name=DAILY_JOB, tags={PARTITION_TAG: partition}), limit=1
            )
            run = runs[0] if runs else None
            checks = check_rows(instance, run.run_id) if run is not None else []
            checks_note = (
                f"Results of run {run.run_id} ({run.status.value.lower()})."
                if run is not None
                else "The daily job has not run for this day on this Dagster instance."
            )
            try:
                plan = defs.load_asset_value(RETENTION_PLAN, partition_key=partition, instance=instance)
                tagged = defs.load_asset_value(TAGGED_RECORDS, partition_key=partition, instance=instance)
                notes.append("Held rows and expiries are those of the day's stored plan and tagged records.")
            except (FileNotFoundError, dg.DagsterError):
                plan, tagged, note = _compute_now(config, day)
                notes.append(note)
        _, files = write_day_report(
            config, control, day, plan=plan, tagged=tagged, checks=checks, checks_note=checks_note, notes=notes
        )
    finally:
        control.dispose()
    return files, notes


def _compute_now(config: EstateConfig, day: dt.date) -> tuple[Plan | None, Tagged | None, str]:
    """Plan and deadlines from the current data; none when the estate cannot be read (the report still says
    what the ledger and the alerts know, which is what matters on the day a run failed)."""
    from retention.config.keys import load_keyring
    from retention.daily.flow import compute_plan
    from retention.storage.engines import Estate, is_demo

    keyring, _ = load_keyring(demo=is_demo(config.catalog))
    estate = Estate.connect(config.catalog)
    try:
        result = compute_plan(config, estate, keyring, day)
    except Exception as exc:  # the report must still be written on the day the estate cannot be read
        return (
            None,
            None,
            f"The daily job stored no plan for this day and none could be computed now ({type(exc).__name__}); "
            "held rows and expiries are not shown.",
        )
    finally:
        estate.dispose()
    note = "The daily job stored no plan for this day; held rows and expiries were computed now from the current data."
    return result.plan, result.tagged, note

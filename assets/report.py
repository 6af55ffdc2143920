"""The compliance report asset, downstream of the apply steps, and the same report on demand for the CLI.

The asset runs after every apply step and its blocking verification, so the ledger it counts is the day's
final word; it reads the day's check results from the run's own event log, where Dagster keeps them.
"""

import datetime as dt
from pathlib import Path

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
MAX_SUMMARY_CHARS = 400


def file_url(path: Path) -> str:
    """A file:// link the UI shows as a link (the files are on the machine that ran the job)."""
    return path.resolve().as_uri()


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
        checks = check_rows(context.instance, context.run.run_id)
        assert estate.estate.control is not None
        report, files = write_day_report(
            estate.config,
            estate.estate.control,
            as_of,
            plan=retention_plan,
            tagged=tagged_records,
            checks=checks,
            checks_note=f"Results of run {context.run.run_id}.",
        )
        context.log.info(f"compliance report for {as_of}: {files.html}")
        docs = data_docs_index()
        links = {"html": files.html, "markdown": files.markdown, **({"data_docs": docs} if docs.exists() else {})}
        return dg.MaterializeResult(
            metadata={
                **{name: dg.MetadataValue.url(file_url(path)) for name, path in links.items()},
                "report": dg.MetadataValue.md(render_markdown(report)),
                "actions": dg.MetadataValue.int(report.total_actions),
                "failed_checks": dg.MetadataValue.int(sum(1 for c in checks if not c.passed)),
            }
        )

    return compliance_report

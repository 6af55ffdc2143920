"""A short, value-free account of a daily run for the terminal: what was read, who was found, what was due,
what was applied, whether the checks passed, and where the day's report is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlparse
from urllib.request import url2pathname

import dagster as dg
from rich.console import Console
from rich.table import Table

from retention.config import settings

PLAN_COLUMNS = ("source", "table", "action", "purpose", "rows")
APPLIED_COLUMNS = ("deleted", "updated", "entries")

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo


def _materializations(result: dg.JobExecutionResult) -> dict[str, Mapping[str, dg.MetadataValue]]:
    return {
        event.materialization.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def _records(meta: Mapping[str, dg.MetadataValue], name: str) -> list[dg.TableRecord]:
    value = meta.get(name)
    return list(value.records) if isinstance(value, dg.TableMetadataValue) else []


def print_run_summary(console: Console, result: dg.JobExecutionResult, day: dt.date, seconds: float) -> None:
    """Rows read, subjects found, the plan, what was applied, the checks, the outcome, the report's path. The run
    id and the path are soft-wrapped: the terminal folds them, no line break is put into them, so they copy whole."""
    mats = _materializations(result)
    snapshots = Table(title=f"Rows snapshotted for {day}")
    for name in ("source", "table", "rows"):
        snapshots.add_column(name, justify="right" if name == "rows" else "left")
    for key, meta in sorted(mats.items()):
        if key.startswith("snapshot/"):
            for record in _records(meta, "row_counts"):
                snapshots.add_row(key.split("/", 1)[1], str(record.data["table"]), f"{record.data['rows']:,}")
    if snapshots.row_count:
        console.print(snapshots)
    if "subject_index" in mats:
        meta = mats["subject_index"]
        console.print(
            f"subjects found: {meta['subjects'].value:,} ({meta['subjects_in_several_databases'].value:,} in more "
            "than one database)"
        )
    if "retention_plan" in mats:
        plan = Table(title=f"Plan as of {day}")
        for name in PLAN_COLUMNS:
            plan.add_column(name, justify="right" if name == "rows" else "left")
        rows = _records(mats["retention_plan"], "plan_table")
        for record in rows:
            plan.add_row(*(f"{record.data[c]:,}" if c == "rows" else str(record.data[c]) for c in PLAN_COLUMNS))
        plan.add_section()
        plan.add_row("total", "", "", "", f"{mats['retention_plan']['planned_actions'].value:,}")
        console.print(plan)
    _print_applied(console, mats, day)
    _print_checks(console, result)
    status = "[green]succeeded[/]" if result.success else "[bold red]failed[/]"
    console.print(f"\nthe daily job {status} in {seconds:.1f} s (run {result.run_id})", soft_wrap=True)
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_key:
                error = event.step_failure_data.error if event.is_step_failure else None
                console.print(f"[red]{event.step_key}[/]: {_engine_message(error) if error else event.message}")
            elif event.event_type is dg.DagsterEventType.RUN_FAILURE:
                data = event.event_specific_data
                error = getattr(data, "error", None)
                if error is not None:  # the run stopped before any step: its resources refused (the daily lease)
                    console.print(f"[red]the run[/]: {_engine_message(error)}")
    if not mats:
        return
    reports = settings.reports_dir()
    report = mats.get("compliance_report", {}).get("html")
    if report is not None:
        console.print(f"compliance report: {url2pathname(urlparse(str(report.value)).path)}", soft_wrap=True)
    console.print(
        f"next: the Data Docs are under {reports}/data-docs/; `make ui` opens the Dagster UI on this instance "
        f"(assets, checks, runs); `retention plan --as-of {day}` prints the plan; `retention report --as-of {day}` "
        f"writes the day's report again; the key and state are under {settings.var_dir()}/"
    )


def _print_applied(console: Console, mats: Mapping[str, Mapping[str, dg.MetadataValue]], day: dt.date) -> None:
    """What the apply steps changed, per table, and what the suppression list removed (nothing when the run
    stopped before applying: then no such table is printed)."""
    applied = Table(title=f"Applied for {day}")
    for name in ("source", "table", *APPLIED_COLUMNS):
        applied.add_column(name, justify="left" if name in ("source", "table") else "right")
    totals = dict.fromkeys(APPLIED_COLUMNS, 0)
    sources = sorted(k for k in mats if k.startswith("apply/"))
    for key in sources:
        for record in _records(mats[key], "applied"):
            counts = [int(record.data[c] or 0) for c in APPLIED_COLUMNS]
            if any(counts):
                applied.add_row(key.split("/", 1)[1], str(record.data["table"]), *(f"{n:,}" for n in counts))
            totals = {c: totals[c] + n for c, n in zip(APPLIED_COLUMNS, counts, strict=True)}
    if not sources:
        return
    applied.add_section()
    applied.add_row("total", "", *(f"{totals[c]:,}" for c in APPLIED_COLUMNS))
    console.print(applied)
    suppression = mats.get("marketing_suppression", {})
    removed = suppression.get("rows_removed")
    if removed is not None and removed.value:
        console.print(f"marketing suppression list: {removed.value:,} rows removed")


def _print_checks(console: Console, result: dg.JobExecutionResult) -> None:
    evaluations = list(result.get_asset_check_evaluations())
    failed = [e for e in evaluations if not e.passed]
    if not evaluations:
        return
    if not failed:
        console.print(f"checks: all {len(evaluations)} passed")
        return
    console.print(f"[red]checks: {len(failed)} of {len(evaluations)} failed[/]")
    for evaluation in failed:
        detail = evaluation.metadata.get("problems") or evaluation.metadata.get("summary")
        console.print(
            f"[red]check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed[/]\n"
            f"{detail.value if detail else ''}"
        )


def _engine_message(error: SerializableErrorInfo) -> str:
    """The engine's own words (the innermost error: Dagster wraps user errors in its own), without the
    exception's class that Dagster puts in front of them."""
    while error.cause is not None:
        error = error.cause
    text = error.message.strip()
    head, sep, rest = text.partition(": ")
    return rest if sep and head.rsplit(".", 1)[-1] == error.cls_name else text

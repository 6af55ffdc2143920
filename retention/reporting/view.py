"""The compliance report as both renderings show it: every row, total, state and label computed once here.

The Markdown and HTML templates only lay this out; a fact added here shows in both, and neither can work out
a number differently from the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from retention.reporting.chart import month_name
from retention.reporting.model import ACTION_COLUMNS, ALERT_DAYS, ComplianceReport, RequestRow, Requests
from retention.rules.calendar import end_of_day

PLAIN = ""


STRONG = "strong"


PASSED = "passed"


FAILED = "failed"


SCHEDULE_HEADERS = ("purpose", "data", "legal basis", "kept", "clock", "at expiry", "reason", "tables")


REQUEST_HEADERS = ("request", "kind", "received", "deadline", "status", "")


CHECK_HEADERS = ("asset", "check", "blocking", "result", "summary")


ALERT_HEADERS = ("when", "run", "day", "what failed", "error")


@dataclass(frozen=True)
class Cell:
    """A cell's text and its emphasis (PLAIN, STRONG, PASSED or FAILED); each template decides how that looks."""

    text: str
    style: str = PLAIN


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RequestsView:
    """The requests section; when the register could not be read, only `note` is shown."""

    available: bool
    note: str
    open_count: int
    open: Table | None
    completed_count: int
    completed: Table | None


@dataclass(frozen=True)
class ReportView:
    day: str
    generated: str
    controller: str
    timezone: str
    financial_year_end: str
    bookkeeping_tables: str
    notes: tuple[str, ...]
    schedule: Table
    actions: Table | None
    runs: tuple[str, ...]
    pending: Table | None
    held: Table | None
    held_missing: str
    undated: Table | None
    shared_identifiers: int
    expiries: Table
    requests: RequestsView
    docs_link: str | None
    checks_note: str
    checks: Table | None
    alert_days: int
    alerts: Table | None


def _cells(values: Iterable[object]) -> tuple[Cell, ...]:
    return tuple(Cell(str(v)) for v in values)


def _table(headers: Sequence[str], rows: Iterable[Iterable[object]], numeric: Iterable[int] = ()) -> Table:
    return Table(tuple(headers), tuple(_cells(r) for r in rows), frozenset(numeric))


def _frame_table(frame: pd.DataFrame, headers: Sequence[str] | None = None) -> Table | None:
    """A count frame as a table, its last column (the rows) numeric; None when it is empty."""
    if frame.empty:
        return None
    return _table(headers or list(frame.columns), frame.itertuples(index=False), [len(frame.columns) - 1])


def _when(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _actions(report: ComplianceReport) -> Table | None:
    table = _frame_table(report.actions, ACTION_COLUMNS)
    if table is None:
        return None
    total = (Cell("total", STRONG), Cell(""), Cell(""), Cell(""), Cell(str(report.total_actions), STRONG))
    return Table(table.headers, (*table.rows, total), table.numeric)


def _expiries(expiries: pd.DataFrame) -> Table:
    """One row per month ahead; only the purposes with an expiry in those months get a column."""
    shown = [p for p in expiries.columns if expiries[p].sum() > 0]
    rows = [
        [month_name(m), *(int(expiries.at[m, p]) for p in shown), int(expiries.loc[m, shown].sum())]
        for m in expiries.index
    ]
    return _table(["month", *shown, "total"], rows, range(1, len(shown) + 2))


def _request_table(rows: list[RequestRow], at: dt.datetime, tz: ZoneInfo) -> Table | None:
    if not rows:
        return None
    return _table(
        REQUEST_HEADERS,
        [[r.id, r.kind, _when(r.received_at, tz), _when(r.deadline, tz), r.status, r.state(at)] for r in rows],
    )


def requests_view(requests: Requests, at: dt.datetime, tz: ZoneInfo) -> RequestsView:
    """The section as of `at` (the end of the as-of day), dates in the business time zone. The note is a sentence
    (not `str.capitalize`, which would lower the exception name in it)."""
    return RequestsView(
        available=requests.available,
        note=f"{requests.note[:1].upper()}{requests.note[1:]}." if requests.note else "",
        open_count=len(requests.open),
        open=_request_table(requests.open, at, tz),
        completed_count=len(requests.completed),
        completed=_request_table(requests.completed, at, tz),
    )


def _checks(report: ComplianceReport) -> Table | None:
    if not report.checks:
        return None
    rows = tuple(
        (
            Cell(c.asset),
            Cell(c.check),
            Cell("yes" if c.blocking else "no"),
            Cell("passed", PASSED) if c.passed else Cell(f"FAILED ({c.severity})", FAILED),
            Cell(c.summary),
        )
        for c in report.checks
    )
    return Table(CHECK_HEADERS, rows)


def _alerts(report: ComplianceReport, tz: ZoneInfo) -> Table | None:
    if not report.alerts:
        return None
    return _table(
        ALERT_HEADERS,
        [
            [_when(a.occurred_at, tz), a.run_id[:8], a.partition_key or "", f"{a.kind}: {a.subject}", a.error]
            for a in report.alerts
        ],
    )


def report_view(report: ComplianceReport) -> ReportView:
    tz = ZoneInfo(report.timezone)
    at = end_of_day(report.as_of, tz).to_pydatetime()
    return ReportView(
        day=report.as_of.isoformat(),
        generated=f"{report.generated_at:%Y-%m-%d %H:%M}",
        controller=report.controller,
        timezone=report.timezone,
        financial_year_end=report.financial_year_end,
        bookkeeping_tables=", ".join(report.bookkeeping_tables),
        notes=tuple(report.notes),
        schedule=_table(
            SCHEDULE_HEADERS,
            [
                [r.purpose, r.data, r.legal_basis, r.kept, r.clock, r.action, r.reason, r.tables]
                for r in report.schedule
            ],
        ),
        actions=_actions(report),
        runs=tuple(report.ledger_runs),
        pending=_frame_table(report.pending, ACTION_COLUMNS),
        held=_frame_table(report.held, ["source", "table", "hold reason", "rows"]),
        held_missing="No row was held." if report.has_plan else "Not known: no plan was available.",
        undated=_frame_table(report.undated, ["source", "table", "purpose", "rows"]),
        shared_identifiers=report.shared_identifiers or 0,
        expiries=_expiries(report.expiries),
        requests=requests_view(report.requests, at, tz),
        docs_link=report.docs_link,
        checks_note=report.checks_note,
        checks=_checks(report),
        alert_days=ALERT_DAYS,
        alerts=_alerts(report, tz),
    )

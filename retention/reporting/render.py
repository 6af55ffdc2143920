"""The compliance report rendered to Markdown and HTML, and written to files."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from retention.reporting.chart import chart_file_name, expiry_chart_svg, month_name
from retention.reporting.model import (
    ACTION_COLUMNS,
    ALERT_DAYS,
    ComplianceReport,
    ReportFiles,
    RequestRow,
    Requests,
    utc_or_none,
)
from retention.rules.calendar import end_of_day


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> list[str]:
    aligned = set(right)
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i in aligned else "---" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _when(moment: dt.datetime | None, tz: Any) -> str:
    if moment is None:
        return ""
    return utc_or_none(moment).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _request_rows(rows: list[RequestRow], at: dt.datetime, tz: Any) -> list[list[object]]:
    out = []
    for r in rows:
        deadline = utc_or_none(r.deadline)
        if r.completed_at is not None:
            state = "late" if deadline is not None and utc_or_none(r.completed_at) > deadline else "in time"
        elif deadline is None:
            state = ""
        else:
            state = f"overdue by {(at - deadline).days} days" if deadline < at else f"{(deadline - at).days} days left"
        out.append([r.id, r.kind, _when(r.received_at, tz), _when(r.deadline, tz), r.status, state])
    return out


def render_markdown(report: ComplianceReport, *, chart_link: str | None = None) -> str:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(report.timezone)
    at = end_of_day(report.as_of, tz).to_pydatetime()
    lines = [
        f"# Compliance report, as of {report.as_of.isoformat()}",
        "",
        f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC. Business time zone {report.timezone}; the financial "
        f"year ends {report.financial_year_end}. Vouchers under the bookkeeping hold: "
        f"{', '.join(report.bookkeeping_tables)}. The report holds counts, dates and run ids, never a value from "
        "the databases.",
        "",
    ]
    lines += [f"> {note}" for note in report.notes]
    lines += ["", "## 1. Retention schedule (records of processing, Art 30(1)(f))", ""]
    lines += _md_table(
        ["purpose", "data", "legal basis", "kept", "clock", "at expiry", "reason", "tables"],
        [[r.purpose, r.data, r.legal_basis, r.kept, r.clock, r.action, r.reason, r.tables] for r in report.schedule],
    )
    lines += ["", "## 2. What the run did", "", "### Actions recorded in the ledger", ""]
    if report.actions.empty:
        lines.append(f"The ledger records no action for {report.as_of.isoformat()}.")
    else:
        lines += _md_table(ACTION_COLUMNS, report.actions.itertuples(index=False), right=[4])
        lines.append(f"| **total** | | | | **{report.total_actions}** |")
    if report.ledger_runs:
        lines += ["", "Runs: " + ", ".join(f"`{r}`" for r in report.ledger_runs)]
    if not report.pending.empty:
        lines += ["", "### Started but not finished (pending in the ledger; the next run completes them)", ""]
        lines += _md_table(ACTION_COLUMNS, report.pending.itertuples(index=False), right=[4])
    lines += ["", "### What it did not do: held rows, by hold reason", ""]
    if report.held.empty:
        lines.append("No row was held." if report.has_plan else "Not known: no plan was available.")
    else:
        lines += _md_table(["source", "table", "hold reason", "rows"], report.held.itertuples(index=False), right=[3])
    if not report.undated.empty:
        lines += ["", "Kept because a purpose has no usable date (reported, never guessed):", ""]
        lines += _md_table(["source", "table", "purpose", "rows"], report.undated.itertuples(index=False), right=[3])
    lines += ["", "## 3. Expected expiries, next twelve months", ""]
    if chart_link:
        lines += [f"![Expected expiries per month and purpose]({chart_link})", ""]
    shown = [p for p in report.expiries.columns if report.expiries[p].sum() > 0]
    lines += _md_table(
        ["month", *shown, "total"],
        [
            [month_name(m), *(int(report.expiries.at[m, p]) for p in shown), int(report.expiries.loc[m, shown].sum())]
            for m in report.expiries.index
        ],
        right=range(1, len(shown) + 2),
    )
    lines += ["", "## 4. Subject requests", ""]
    lines += requests_markdown(report.requests, at, tz)
    lines += ["", "## 5. Data-quality checks", ""]
    if report.docs_link:
        lines.append(f"Great Expectations Data Docs: [{report.docs_link}]({report.docs_link})")
    if report.checks_note:
        lines.append(report.checks_note)
    lines.append("")
    if report.checks:
        lines += _md_table(
            ["asset", "check", "blocking", "result", "summary"],
            [
                [
                    c.asset,
                    c.check,
                    "yes" if c.blocking else "no",
                    "passed" if c.passed else f"FAILED ({c.severity})",
                    c.summary,
                ]
                for c in report.checks
            ],
        )
    else:
        lines.append("No check results were found for this day.")
    lines += ["", f"## 6. Failures in the last {ALERT_DAYS} days", ""]
    if report.alerts:
        lines += _md_table(
            ["when", "run", "day", "what failed", "error"],
            [
                [_when(a.occurred_at, tz), a.run_id[:8], a.partition_key or "", f"{a.kind}: {a.subject}", a.error]
                for a in report.alerts
            ],
        )
    else:
        lines.append("No run, step or blocking check failed.")
    return "\n".join(lines) + "\n"


def requests_markdown(requests: Requests, at: dt.datetime, tz: Any) -> list[str]:
    if not requests.available:
        return [requests.note.capitalize() + "."]
    headers = ["request", "kind", "received", "deadline", "status", ""]
    lines = [f"Open requests ({len(requests.open)}), overdue first:", ""]
    lines += _md_table(headers, _request_rows(requests.open, at, tz)) if requests.open else ["None."]
    lines += ["", f"Completed on the day ({len(requests.completed)}):", ""]
    lines += _md_table(headers, _request_rows(requests.completed, at, tz)) if requests.completed else ["None."]
    return lines


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.failed { color: #b00020; font-weight: bold; }
.passed { color: #1b5e20; }
.note { color: #555; }
"""


def _h(text: object) -> str:
    return html.escape(str(text))


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> str:
    aligned = set(right)
    out = ["<table>", "<tr>" + "".join(f"<th>{_h(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="n"' if i in aligned else ""
            cells.append(f"<td{cls}>{cell if isinstance(cell, _Raw) else _h(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


class _Raw(str):
    """Markup built here from escaped parts, inserted into a table cell as is."""


def render_html(report: ComplianceReport, chart_svg: str) -> str:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(report.timezone)
    at = end_of_day(report.as_of, tz).to_pydatetime()
    day = report.as_of.isoformat()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Compliance report, as of {day}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Compliance report, as of {day}</h1>",
        f"<p>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC. Business time zone {_h(report.timezone)}; the "
        f"financial year ends {_h(report.financial_year_end)}. Vouchers under the bookkeeping hold: "
        f"{_h(', '.join(report.bookkeeping_tables))}. The report holds counts, dates and run ids, never a value "
        "from the databases.</p>",
        *(f'<p class="note">{_h(n)}</p>' for n in report.notes),
        "<h2>1. Retention schedule (records of processing, Art 30(1)(f))</h2>",
        _html_table(
            ["purpose", "data", "legal basis", "kept", "clock", "at expiry", "reason", "tables"],
            [
                [r.purpose, r.data, r.legal_basis, r.kept, r.clock, r.action, r.reason, r.tables]
                for r in report.schedule
            ],
        ),
        "<h2>2. What the run did</h2>",
        "<h3>Actions recorded in the ledger</h3>",
    ]
    if report.actions.empty:
        parts.append(f"<p>The ledger records no action for {day}.</p>")
    else:
        rows = [list(r) for r in report.actions.itertuples(index=False)]
        rows.append([_Raw("<strong>total</strong>"), "", "", "", _Raw(f"<strong>{report.total_actions}</strong>")])
        parts.append(_html_table(ACTION_COLUMNS, rows, right=[4]))
    if report.ledger_runs:
        parts.append("<p>Runs: " + ", ".join(f"<code>{_h(r)}</code>" for r in report.ledger_runs) + "</p>")
    if not report.pending.empty:
        parts.append("<h3>Started but not finished (pending in the ledger; the next run completes them)</h3>")
        parts.append(_html_table(ACTION_COLUMNS, report.pending.itertuples(index=False), right=[4]))
    parts.append("<h3>What it did not do: held rows, by hold reason</h3>")
    if report.held.empty:
        parts.append("<p>No row was held.</p>" if report.has_plan else "<p>Not known: no plan was available.</p>")
    else:
        parts.append(_html_table(["source", "table", "hold reason", "rows"], report.held.itertuples(index=False), [3]))
    if not report.undated.empty:
        parts.append("<p>Kept because a purpose has no usable date (reported, never guessed):</p>")
        parts.append(_html_table(["source", "table", "purpose", "rows"], report.undated.itertuples(index=False), [3]))
    shown = [p for p in report.expiries.columns if report.expiries[p].sum() > 0]
    parts += [
        "<h2>3. Expected expiries, next twelve months</h2>",
        f'<figure class="chart">{chart_svg}</figure>',
        _html_table(
            ["month", *shown, "total"],
            [
                [
                    month_name(m),
                    *(int(report.expiries.at[m, p]) for p in shown),
                    int(report.expiries.loc[m, shown].sum()),
                ]
                for m in report.expiries.index
            ],
            right=range(1, len(shown) + 2),
        ),
        "<h2>4. Subject requests</h2>",
    ]
    requests = report.requests
    if not requests.available:
        parts.append(f"<p>{_h(requests.note.capitalize())}.</p>")
    else:
        headers = ["request", "kind", "received", "deadline", "status", ""]
        parts.append(f"<p>Open requests ({len(requests.open)}), overdue first:</p>")
        parts.append(_html_table(headers, _request_rows(requests.open, at, tz)) if requests.open else "<p>None.</p>")
        parts.append(f"<p>Completed on the day ({len(requests.completed)}):</p>")
        parts.append(
            _html_table(headers, _request_rows(requests.completed, at, tz)) if requests.completed else "<p>None.</p>"
        )
    parts.append("<h2>5. Data-quality checks</h2>")
    if report.docs_link:
        parts.append(
            f'<p>Great Expectations Data Docs: <a href="{_h(report.docs_link)}">{_h(report.docs_link)}</a></p>'
        )
    if report.checks_note:
        parts.append(f'<p class="note">{_h(report.checks_note)}</p>')
    if report.checks:
        parts.append(
            _html_table(
                ["asset", "check", "blocking", "result", "summary"],
                [
                    [
                        c.asset,
                        c.check,
                        "yes" if c.blocking else "no",
                        _Raw('<span class="passed">passed</span>')
                        if c.passed
                        else _Raw(f'<span class="failed">FAILED ({_h(c.severity)})</span>'),
                        c.summary,
                    ]
                    for c in report.checks
                ],
            )
        )
    else:
        parts.append("<p>No check results were found for this day.</p>")
    parts.append(f"<h2>6. Failures in the last {ALERT_DAYS} days</h2>")
    if report.alerts:
        parts.append(
            _html_table(
                ["when", "run", "day", "what failed", "error"],
                [
                    [_when(a.occurred_at, tz), a.run_id[:8], a.partition_key or "", f"{a.kind}: {a.subject}", a.error]
                    for a in report.alerts
                ],
            )
        )
    else:
        parts.append("<p>No run, step or blocking check failed.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def report_file_stem(as_of: dt.date) -> str:
    return f"compliance-report-{as_of.isoformat()}"


def write_report(report: ComplianceReport, folder: Path) -> ReportFiles:
    """Write the Markdown, the HTML (chart inline) and the chart as its own SVG file for the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    svg = expiry_chart_svg(report.expiries, report.as_of)
    chart = folder / chart_file_name(report.as_of)
    chart.write_text(svg + "\n", encoding="utf-8")
    markdown = folder / f"{report_file_stem(report.as_of)}.md"
    markdown.write_text(render_markdown(report, chart_link=chart.name), encoding="utf-8")
    page = folder / f"{report_file_stem(report.as_of)}.html"
    page.write_text(render_html(report, svg), encoding="utf-8")
    return ReportFiles(markdown=markdown, html=page, chart=chart)

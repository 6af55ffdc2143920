"""The daily compliance report: what a data-protection officer hands to the authority, in Markdown and HTML.

It gathers the retention schedule (the Art 30(1)(f) part of the records of processing), what the day's run
did according to the ledger and what it held back, the expiries ahead per purpose, the subject requests and
their deadlines, the data-quality checks, and the failures of recent runs. Everything in it is a count, a key
word from the configuration, a date or a run id: the report never quotes a value from the sources.

No Dagster here: the asset and the CLI gather check results themselves and pass them in.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retention.alerts import Alert, recent_alerts
from retention.catalog import Catalog
from retention.config import EstateConfig
from retention.control import PENDING, ensure_schema, ledger
from retention.planning import Plan
from retention.policy import Clock, Policy
from retention.tagging import Tagged
from retention.timeutil import end_of_day

EXPIRY_MONTHS = 12
ALERT_DAYS = 30
DOCS_LINK = "data-docs/index.html"
NO_REGISTER = "no request register yet"

# Distinguishable colours (Okabe-Ito, then Tableau), one per purpose in policy order.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#8C564B",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
)


@dataclass(frozen=True)
class ScheduleRow:
    purpose: str
    data: str
    legal_basis: str
    kept: str
    clock: str
    action: str
    reason: str
    tables: str


@dataclass(frozen=True)
class CheckRow:
    """One asset check's result in the day's run, as Dagster recorded it."""

    asset: str
    check: str
    passed: bool
    severity: str
    blocking: bool
    summary: str


@dataclass(frozen=True)
class RequestRow:
    id: object
    kind: str
    received_at: dt.datetime | None
    deadline: dt.datetime | None
    status: str
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, item: Any) -> RequestRow:
        """Only these fields are read from a register entry; identifiers, subjects and receipts never are."""
        ident = getattr(item, "id", None)
        kind = getattr(item, "kind", "")
        status = getattr(item, "status", "")
        return cls(
            id=ident if ident is not None else getattr(item, "request_id", None),
            kind=str(getattr(kind, "value", kind)),
            received_at=getattr(item, "received_at", None),
            deadline=getattr(item, "deadline", None),
            status=str(getattr(status, "value", status)),
            completed_at=getattr(item, "completed_at", None),
        )


@dataclass
class Requests:
    """The register's open requests (overdue first) and those completed on the as-of day; or why there are none."""

    open: list[RequestRow] = field(default_factory=list)
    completed: list[RequestRow] = field(default_factory=list)
    note: str = ""
    available: bool = True


@dataclass
class ComplianceReport:
    as_of: dt.date
    generated_at: dt.datetime
    timezone: str
    financial_year_end: str
    bookkeeping_tables: list[str]
    schedule: list[ScheduleRow]
    actions: pd.DataFrame
    pending: pd.DataFrame
    ledger_runs: list[str]
    held: pd.DataFrame
    undated: pd.DataFrame
    expiries: pd.DataFrame
    requests: Requests
    checks: list[CheckRow]
    checks_note: str
    docs_link: str | None
    alerts: list[Alert]
    has_plan: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def total_actions(self) -> int:
        return int(self.actions["rows"].sum()) if not self.actions.empty else 0


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    chart: Path


def _clock_text(policy: Policy, name: str) -> str:
    purpose = policy.purposes[name]
    after = {
        Clock.LAST_INTERACTION: "the person's last interaction",
        Clock.RECORD_DATE: "the record's date",
        Clock.END_OF_FINANCIAL_YEAR: f"the end of the financial year (ends {policy.financial_year_end})",
        Clock.EVENT: f"event '{purpose.event}'",
    }[purpose.clock]
    text = f"from {after}"
    if purpose.or_at_event:
        text += f", or at event '{purpose.or_at_event}' if that comes first"
    return text


def retention_schedule(catalog: Catalog, policy: Policy) -> list[ScheduleRow]:
    """The schedule as the policy documents it, with the tables each purpose covers (from the catalog)."""
    rows = []
    for name, purpose in policy.purposes.items():
        tables = [f"{s}.{t}" for s, t, entry in catalog.tables() if name in entry.purposes]
        rows.append(
            ScheduleRow(
                purpose=name,
                data=purpose.data,
                legal_basis=purpose.legal_basis,
                kept=str(purpose.period),
                clock=_clock_text(policy, name),
                action=purpose.action.value,
                reason=purpose.reason,
                tables=", ".join(tables) or "(no table)",
            )
        )
    return rows


ACTION_COLUMNS = ["source", "table", "action", "rule", "rows"]


def ledger_counts(control: sa.Engine, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Done and pending actions of the day by source, table, action and rule, and the runs that wrote them."""
    ensure_schema(control)
    query = (
        sa.select(
            ledger.c.source,
            ledger.c.table_name,
            ledger.c.action,
            ledger.c.rule,
            ledger.c.status,
            sa.func.count().label("rows"),
        )
        .where(ledger.c.as_of == as_of)
        .group_by(ledger.c.source, ledger.c.table_name, ledger.c.action, ledger.c.rule, ledger.c.status)
    )
    with control.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=["source", "table", "action", "rule", "status", "rows"])
        runs = [r[0] for r in conn.execute(sa.select(ledger.c.run_id).where(ledger.c.as_of == as_of).distinct())]
    frame["rows"] = frame["rows"].astype(int)
    order = ["source", "table", "action", "rule"]
    done = frame[frame["status"] != PENDING][ACTION_COLUMNS].sort_values(order).reset_index(drop=True)
    pending = frame[frame["status"] == PENDING][ACTION_COLUMNS].sort_values(order).reset_index(drop=True)
    return done, pending, sorted(runs)


def held_counts(plan: Plan | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows the plan kept back, by hold reason; and rows kept because a purpose had no usable date."""
    held = [
        (s, t, reason, n) for (s, t), reasons in (plan.held if plan else {}).items() for reason, n in reasons.items()
    ]
    undated = [
        (s, t, purpose, n)
        for (s, t), purposes in (plan.undated if plan else {}).items()
        for purpose, n in purposes.items()
    ]
    return (
        pd.DataFrame(sorted(held), columns=["source", "table", "reason", "rows"]),
        pd.DataFrame(sorted(undated), columns=["source", "table", "purpose", "rows"]),
    )


def month_labels(as_of: dt.date, months: int = EXPIRY_MONTHS) -> list[str]:
    first = pd.Period(as_of, freq="M")
    return [str(first + i) for i in range(months)]


def expected_expiries(
    tagged: Tagged | None, policy: Policy, as_of: dt.date, months: int = EXPIRY_MONTHS
) -> pd.DataFrame:
    """Rows whose purpose ends in each of the next `months` local calendar months (the rest of the as-of month
    first), per purpose. A deadline is the moment a purpose ends, so it counts in the month it falls in."""
    labels = month_labels(as_of, months)
    counts = pd.DataFrame(0, index=labels, columns=list(policy.purposes), dtype=int)
    if tagged is None:
        return counts
    tz = policy.timezone
    start = end_of_day(as_of, tz)
    for table in tagged.values():
        for purpose in table.purposes:
            deadlines = table.frame[f"deadline:{purpose}"].dropna()
            deadlines = deadlines[deadlines >= start]
            if deadlines.empty:
                continue
            month = deadlines.dt.tz_convert(tz).dt.tz_localize(None).dt.to_period("M").astype(str)
            found = month[month.isin(labels)].value_counts()
            counts.loc[found.index, purpose] += found.to_numpy()
    return counts


def load_requests(control: sa.Engine, as_of: dt.date, tz: Any) -> Requests:
    """The subject-request register, if it exists yet: open requests overdue first, and the day's completed ones.

    The register module is imported here, not at the top, so the report works before (and without) it.
    """
    try:
        register = importlib.import_module("retention.requests")
    except ModuleNotFoundError as exc:
        if exc.name != "retention.requests":
            raise
        return Requests(note=NO_REGISTER, available=False)
    lister = getattr(register, "list_requests", None)
    if lister is None:
        return Requests(note=NO_REGISTER, available=False)
    try:
        rows = [RequestRow.of(item) for item in lister(control)]
    except sa.exc.SQLAlchemyError as exc:
        return Requests(note=f"the request register could not be read ({type(exc).__name__})", available=False)
    start = end_of_day(as_of - dt.timedelta(days=1), tz).to_pydatetime()
    end = end_of_day(as_of, tz).to_pydatetime()
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    open_rows = [r for r in rows if r.completed_at is None]
    open_rows.sort(key=lambda r: (not _overdue(r, end), _utc(r.deadline) or far))
    completed = [r for r in rows if r.completed_at is not None and start <= _utc(r.completed_at) < end]
    return Requests(open=open_rows, completed=completed)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _overdue(row: RequestRow, at: dt.datetime) -> bool:
    deadline = _utc(row.deadline)
    return deadline is not None and deadline < at


def gather_report(
    config: EstateConfig,
    control: sa.Engine,
    as_of: dt.date,
    *,
    plan: Plan | None = None,
    tagged: Tagged | None = None,
    checks: Sequence[CheckRow] = (),
    checks_note: str = "",
    docs_index: Path | None = None,
    notes: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> ComplianceReport:
    policy = config.policy
    actions, pending, runs = ledger_counts(control, as_of)
    held, undated = held_counts(plan)
    since = end_of_day(as_of, policy.timezone).to_pydatetime() - dt.timedelta(days=ALERT_DAYS)
    return ComplianceReport(
        as_of=as_of,
        generated_at=(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
        timezone=policy.business_timezone,
        financial_year_end=policy.financial_year_end,
        bookkeeping_tables=list(policy.bookkeeping_hold.tables),
        schedule=retention_schedule(config.catalog, policy),
        actions=actions,
        pending=pending,
        ledger_runs=runs,
        held=held,
        undated=undated,
        expiries=expected_expiries(tagged, policy, as_of),
        requests=load_requests(control, as_of, policy.timezone),
        checks=list(checks),
        checks_note=checks_note,
        docs_link=DOCS_LINK if docs_index is not None and docs_index.exists() else None,
        alerts=recent_alerts(control, since=since),
        has_plan=plan is not None,
        notes=[*notes, *([] if plan is not None else ["No plan was available, so held rows are not shown."])],
    )


# --- the chart --------------------------------------------------------------------------------------------------


def _nice_ceiling(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return 10 * magnitude


def _month_name(label: str) -> str:
    return pd.Period(label, freq="M").strftime("%b %Y")


def expiry_chart_svg(expiries: pd.DataFrame, as_of: dt.date) -> str:
    """A stacked bar chart of expected expiries per month and purpose, as standalone SVG (no dependency)."""
    shown = [p for p in expiries.columns if expiries[p].sum() > 0]
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(expiries.columns)}
    width, height = 880, 420
    left, right, top, bottom = 64, 220, 48, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = expiries[shown].sum(axis=1) if shown else pd.Series(0, index=expiries.index)
    ymax = _nice_ceiling(int(totals.max()) if len(totals) else 0)
    slot = plot_w / max(len(expiries.index), 1)
    bar = slot * 0.7
    title = f"Expected expiries per month from {as_of.isoformat()}, by purpose"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="expiry-title" font-family="sans-serif" font-size="12">',
        f'<title id="expiry-title">{html.escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="24" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i in range(5):
        value = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#dddddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    out.append(
        f'<text x="16" y="{top + plot_h / 2:.1f}" transform="rotate(-90 16 {top + plot_h / 2:.1f})" '
        'text-anchor="middle">rows reaching the end of a purpose</text>'
    )
    for i, label in enumerate(expiries.index):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for purpose in shown:
            count = int(expiries.at[label, purpose])
            if count == 0:
                continue
            h = plot_h * count / ymax
            y -= h
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colours[purpose]}"><title>{html.escape(purpose)}, {_month_name(label)}: '
                f"{count:,} rows</title></rect>"
            )
        out.append(
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{html.escape(_month_name(label).split()[0])}</text>"
        )
        if i == 0 or label.endswith("-01"):
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 30}" text-anchor="middle" fill="#555555">'
                f"{label[:4]}</text>"
            )
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333333"/>')
    legend_x = left + plot_w + 20
    if not shown:
        out.append(f'<text x="{legend_x}" y="{top + 12}">no expiries ahead</text>')
    for i, purpose in enumerate(shown):
        y = top + i * 20
        out.append(f'<rect x="{legend_x}" y="{y}" width="12" height="12" fill="{colours[purpose]}"/>')
        out.append(f'<text x="{legend_x + 18}" y="{y + 10}">{html.escape(purpose)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# --- Markdown ---------------------------------------------------------------------------------------------------


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
    return _utc(moment).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _request_rows(rows: list[RequestRow], at: dt.datetime, tz: Any) -> list[list[object]]:
    out = []
    for r in rows:
        deadline = _utc(r.deadline)
        if r.completed_at is not None:
            state = "late" if deadline is not None and _utc(r.completed_at) > deadline else "in time"
        elif deadline is None:
            state = ""
        else:
            state = f"overdue by {(at - deadline).days} days" if deadline < at else f"{(deadline - at).days} days left"
        out.append([r.id, r.kind, _when(r.received_at, tz), _when(r.deadline, tz), r.status, state])
    return out


def chart_file_name(as_of: dt.date) -> str:
    return f"expiries-{as_of.isoformat()}.svg"


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
            [_month_name(m), *(int(report.expiries.at[m, p]) for p in shown), int(report.expiries.loc[m, shown].sum())]
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


# --- HTML -------------------------------------------------------------------------------------------------------

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
                    _month_name(m),
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

"""The daily compliance report: what a data-protection officer hands to the authority, in Markdown and HTML.

It gathers the retention schedule (the Art 30(1)(f) part of the records of processing), what the day's run
did according to the ledger and what it held back, the expiries ahead per purpose, the subject requests and
their deadlines, the data-quality checks, and the failures of recent runs. Everything in it is a count, a key
word from the configuration, a date or a run id: the report never quotes a value from the sources.

No Dagster here: the asset and the CLI gather check results themselves and pass them in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from retention.config.catalog import Catalog
from retention.config.loading import EstateConfig
from retention.config.policy import Clock, Policy
from retention.daily.planning import Plan
from retention.daily.tagging import Tagged
from retention.reporting.alerts import Alert, recent_alerts
from retention.requests.model import SubjectRequest
from retention.requests.register import list_requests
from retention.rules import columns
from retention.rules.calendar import end_of_day
from retention.storage.frames import rows_frame
from retention.storage.schema import PENDING, ensure_schema, ledger

EXPIRY_MONTHS = 12


ALERT_DAYS = 30


DOCS_LINK = "data-docs/index.html"


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
    """What the report shows of a request: identifiers, subjects, outcomes and receipts are left behind."""

    id: int
    kind: str
    received_at: dt.datetime
    deadline: dt.datetime
    status: str
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, request: SubjectRequest) -> RequestRow:
        return cls(
            id=request.request_id,
            kind=request.kind.value,
            received_at=request.received_at,
            deadline=request.deadline,
            status=request.status.value,
            completed_at=request.completed_at,
        )

    def overdue(self, at: dt.datetime) -> bool:
        """Still open at `at` and past its deadline."""
        return self.completed_at is None and self.deadline < at

    def state(self, at: dt.datetime) -> str:
        """How the request stands against its deadline: answered in time or late, or the days left or over."""
        if self.completed_at is not None:
            return "late" if self.completed_at > self.deadline else "in time"
        if self.deadline < at:
            return f"overdue by {(at - self.deadline).days} days"
        return f"{(self.deadline - at).days} days left"


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
    controller: str
    """Who is responsible, their contact and DPO, and the supervisory authority (policy.yaml `controller`)."""
    timezone: str
    financial_year_end: str
    bookkeeping_tables: list[str]
    schedule: list[ScheduleRow]
    actions: pd.DataFrame
    pending: pd.DataFrame
    ledger_runs: list[str]
    held: pd.DataFrame
    undated: pd.DataFrame
    shared_identifiers: int | None
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
        frame = rows_frame(conn.execute(query), ["source", "table", "action", "rule", "status", "rows"])
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
            deadlines = table.frame[columns.deadline(purpose)].dropna()
            deadlines = deadlines[deadlines >= start]
            if deadlines.empty:
                continue
            month = deadlines.dt.tz_convert(tz).dt.tz_localize(None).dt.to_period("M").astype(str)
            found = month[month.isin(labels)].value_counts()
            counts.loc[found.index, purpose] += found.to_numpy()
    return counts


def load_requests(control: sa.Engine, as_of: dt.date, tz: ZoneInfo) -> Requests:
    """The register's open requests, overdue first, and those completed on the as-of (local) day.

    A register that cannot be read leaves the section with a note rather than failing the report: the rest of
    it (what the run did, the failures) matters most on the day the control database misbehaves.
    """
    try:
        rows = [RequestRow.of(request) for request in list_requests(control)]
    except sa.exc.SQLAlchemyError as exc:
        return Requests(note=f"the request register could not be read ({type(exc).__name__})", available=False)
    start = end_of_day(as_of - dt.timedelta(days=1), tz).to_pydatetime()
    end = end_of_day(as_of, tz).to_pydatetime()
    open_rows = sorted((r for r in rows if r.completed_at is None), key=lambda r: (not r.overdue(end), r.deadline))
    completed = [r for r in rows if r.completed_at is not None and start <= r.completed_at < end]
    return Requests(open=open_rows, completed=completed)


def controller_text(policy: Policy) -> str:
    controller = policy.controller
    if controller is None:
        return "not named (policy.yaml has no `controller`)"
    parts = [controller.name, *(p for p in (controller.address,) if p), f"contact {controller.contact}"]
    parts += [f"data protection officer {controller.dpo}"] if controller.dpo else []
    return ", ".join(parts) + f"; supervisory authority: {controller.authority.describe()}"


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
        controller=controller_text(policy),
        timezone=policy.business_timezone,
        financial_year_end=policy.financial_year_end,
        bookkeeping_tables=list(policy.bookkeeping_hold.tables),
        schedule=retention_schedule(config.catalog, policy),
        actions=actions,
        pending=pending,
        ledger_runs=runs,
        held=held,
        undated=undated,
        shared_identifiers=plan.shared_identifiers if plan else None,
        expiries=expected_expiries(tagged, policy, as_of),
        requests=load_requests(control, as_of, policy.timezone),
        checks=list(checks),
        checks_note=checks_note,
        docs_link=DOCS_LINK if docs_index is not None and docs_index.exists() else None,
        alerts=recent_alerts(control, since=since),
        has_plan=plan is not None,
        notes=[*notes, *([] if plan is not None else ["No plan was available, so held rows are not shown."])],
    )

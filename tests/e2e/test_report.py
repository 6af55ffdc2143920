"""The compliance report of a real daily run on the demo estate.

It must print the retention schedule as policy.yaml documents it, counts that match the ledger row for row,
the rows the plan held back, a chart of the expiries ahead that agrees with the tagged records, the checks
with a link to their Data Docs; and no file written under var/reports may hold a personal value of the estate.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from anonymizers.keys import Key
from assets.planning import RETENTION_PLAN, TAGGED_RECORDS
from assets.report import COMPLIANCE_REPORT
from cli.app import app
from pipelines.runner import run_daily
from retention.config import settings
from retention.config.catalog import IdentifierKind
from retention.config.loading import EstateConfig, load_config
from retention.config.requests import RequestSettings
from retention.quality.checks import SNAPSHOT_CHECKS
from retention.quality.gx import quality_dir
from retention.reporting.chart import expiry_chart_svg
from retention.reporting.model import gather_report, load_requests, month_labels
from retention.reporting.render import render_html, render_markdown
from retention.requests.kinds import RequestKind
from retention.requests.receipts import Receipt
from retention.requests.register import claim_request, complete_request, register_request
from retention.rules.calendar import end_of_day
from retention.storage.schema import subject_requests
from tests.e2e.test_quality import ANCHOR, ROOT, make_estate
from tests.support import find_leaks, personal_values, stored_asset, stored_bytes

DAY = ANCHOR.isoformat()


def md_table(markdown: str, heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after `heading` (without the header and the total row)."""
    lines = markdown[markdown.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells[0] != "**total**":
            rows.append(cells)
    return rows


def ledger_counts(control: str) -> dict[tuple[str, str, str, str], int]:
    engine = sa.create_engine(control)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT source, table_name, action, rule, COUNT(*) FROM ledger "
                    "WHERE as_of = :day AND status = 'done' GROUP BY source, table_name, action, rule"
                ),
                {"day": DAY},
            ).all()
    finally:
        engine.dispose()
    return {(s, t, a, r): n for s, t, a, r, n in rows}


def expiries_from_tagged(tagged: dict, tz: ZoneInfo) -> dict[str, int]:
    """Rows per local month whose purpose ends after the as-of day, counted the plain way."""
    start = end_of_day(ANCHOR, tz)
    months = {str(pd.Period(ANCHOR, freq="M") + i) for i in range(12)}
    totals: dict[str, int] = {}
    for table in tagged.values():
        for purpose in table.purposes:
            for deadline in table.frame[f"deadline:{purpose}"].dropna():
                local = deadline.tz_convert(tz)
                month = f"{local.year}-{local.month:02d}"
                if deadline >= start and month in months:
                    totals[month] = totals.get(month, 0) + 1
    return totals


def test_compliance_report_of_a_daily_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls, control = make_estate(tmp_path, monkeypatch)
    values = personal_values(urls)  # before the run: it replaces and deletes them

    result = run_daily(ANCHOR, confirm_large_plan=True)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    reports = settings.reports_dir()
    markdown = (reports / f"compliance-report-{DAY}.md").read_text(encoding="utf-8")
    page = (reports / f"compliance-report-{DAY}.html").read_text(encoding="utf-8")
    chart = (reports / f"expiries-{DAY}.svg").read_text(encoding="utf-8")

    # 1. the schedule, every purpose with what policy.yaml says about it
    policy = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text(encoding="utf-8"))
    schedule = {row[0]: row for row in md_table(markdown, "## 1. Retention schedule")}
    assert set(schedule) == set(policy["purposes"])
    for name, purpose in policy["purposes"].items():
        assert schedule[name][1:4] == [purpose["data"], purpose["legal_basis"], purpose["period"]]
        assert schedule[name][5:7] == [purpose["action"], purpose["reason"]]
        assert html.escape(purpose["reason"]) in page and html.escape(purpose["legal_basis"]) in page

    # 2. what the run did: the counts are the ledger's, row for row
    in_ledger = ledger_counts(control)
    assert in_ledger, "the demo run should have acted"
    shown = {tuple(row[:4]): int(row[4]) for row in md_table(markdown, "### Actions recorded in the ledger")}
    assert shown == in_ledger
    assert f"**{sum(in_ledger.values())}**" in markdown
    assert result.run_id in markdown
    plan = stored_asset(RETENTION_PLAN, ANCHOR)
    held = {(s, t, reason): n for (s, t), reasons in plan.held.items() for reason, n in reasons.items()}
    assert held, "vouchers inside their bookkeeping period are held"
    assert {tuple(row[:3]): int(row[3]) for row in md_table(markdown, "held rows, by hold reason")} == held

    # 3. the chart agrees with the tagged records
    tagged = stored_asset(TAGGED_RECORDS, ANCHOR)
    expected = expiries_from_tagged(tagged, ZoneInfo(policy["business_timezone"]))
    table = md_table(markdown, "## 3. Expected expiries")
    assert len(table) == 12
    totals = {row[0]: int(row[-1]) for row in table}
    assert {pd.Period(m, freq="M").strftime("%b %Y"): n for m, n in expected.items()} == {
        m: n for m, n in totals.items() if n
    }
    assert chart.startswith("<svg") and chart.count('class="bar"') > 0
    assert chart.count('class="bar"') == sum(1 for row in table for cell in row[1:-1] if int(cell))
    assert "<svg" in page and f"(expiries-{DAY}.svg)" in markdown

    # 4. and 5. requests and checks, with the Data Docs next to the report
    assert "## 4. Subject requests" in markdown
    checks = md_table(markdown, "## 5. Data-quality checks")
    assert len(checks) >= 24 and all(row[3] == "passed" for row in checks), checks
    assert {row[1] for row in checks} >= {c.name for c in SNAPSHOT_CHECKS} | {"verified_after_apply"}
    assert "(data-docs/index.html)" in markdown and (reports / "data-docs" / "index.html").exists()
    assert "No run, step or blocking check failed." in markdown

    # the asset shows the report in the UI, as Markdown metadata
    materialized = {e.asset_key: e.materialization for e in result.get_asset_materialization_events()}
    metadata = materialized[COMPLIANCE_REPORT].metadata
    assert cast(str, metadata["report"].value).startswith(f"# Compliance report, as of {DAY}")
    assert metadata["actions"].value == sum(in_ledger.values())

    # `retention report` writes the same report again from what the run stored, and says where
    (reports / f"compliance-report-{DAY}.md").unlink()
    outcome = CliRunner().invoke(app, ["report", "--as-of", DAY])
    assert outcome.exit_code == 0, outcome.output
    assert f"compliance report for {DAY}" in outcome.output
    again = (reports / f"compliance-report-{DAY}.md").read_text(encoding="utf-8")
    actions = "### Actions recorded in the ledger"
    assert md_table(again, actions) == md_table(markdown, actions)
    assert md_table(again, "## 3. Expected expiries") == table

    # nothing under var/reports, nor Great Expectations' own state, holds a personal value
    files = {**stored_bytes(reports), **{f"quality/{k}": v for k, v in stored_bytes(quality_dir()).items()}}
    assert any(name.startswith("data-docs/validations/") for name in files)
    assert find_leaks(values, files) == []
    assert str(tmp_path).encode() not in b"".join(v for k, v in files.items() if k.startswith("compliance-report"))


SECRET_EMAIL = "must.never.show@example.dk"


SECRET_PHONE = "+45 61 23 45 67"


def utc_at(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def register(control: sa.Engine, config: EstateConfig, received_at: dt.datetime) -> int:
    identifiers = {IdentifierKind.EMAIL: SECRET_EMAIL, IdentifierKind.PHONE: SECRET_PHONE}
    return register_request(
        control,
        Key("report-test", bytes(range(32))),
        RequestKind.ERASURE,
        identifiers,
        RequestSettings(),
        config.policy.timezone,
        received_at=received_at,
    )


def completed(control: sa.Engine, request_id: int, at: dt.datetime) -> None:
    """Done as the register does it (identifiers dropped), then dated as the test needs."""
    receipt = Receipt(
        request=request_id, kind=RequestKind.ERASURE, received_at=None, deadline=None, run_id="r", found=True
    )
    complete_request(control, request_id, ["subject-1"], "erased", receipt)
    with control.begin() as conn:
        conn.execute(
            subject_requests.update().where(subject_requests.c.request_id == request_id).values(completed_at=at)
        )


def test_request_section_lists_overdue_requests_first(tmp_path: Path) -> None:
    """Open requests overdue first, only the as-of day's completions, and no identifier the people gave; a register
    that cannot be read is said so, and the rest of the report is still written."""
    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    tz = config.policy.timezone
    control = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    # deadlines one month after receipt; the as-of moment is the end of 1 June in Copenhagen (22:00 UTC)
    first = register(control, config, utc_at(2025, 5, 20))  # deadline 20 June: open, in time
    second = register(control, config, utc_at(2025, 4, 20))  # deadline 20 May: open, overdue by 12 days
    on_the_day = register(control, config, utc_at(2025, 5, 10))
    earlier = register(control, config, utc_at(2025, 4, 1))
    next_day = register(control, config, utc_at(2025, 5, 10))
    assert claim_request(control, first, "run-1")
    completed(control, on_the_day, utc_at(2025, 6, 1, 9))
    completed(control, earlier, utc_at(2025, 5, 1, 9))
    completed(control, next_day, utc_at(2025, 6, 1, 23))  # 2 June, 01:00 in Copenhagen

    requests = load_requests(control, ANCHOR, tz)
    assert [r.id for r in requests.open] == [second, first] == [2, 1]
    assert [r.id for r in requests.completed] == [on_the_day] == [3]
    report = gather_report(config, control, ANCHOR, now=utc_at(2025, 6, 2, 4))
    markdown = render_markdown(report)
    page = render_html(report, expiry_chart_svg(report.expiries, ANCHOR))
    assert [row[0] for row in md_table(markdown, "Open requests (2), overdue first")] == ["2", "1"]
    assert [row[0] for row in md_table(markdown, "Completed on the day (1)")] == ["3"]
    assert "overdue by 12 days" in markdown and "overdue by 12 days" in page
    for text in (markdown, page):
        assert SECRET_EMAIL not in text and html.escape(SECRET_EMAIL) not in text
        assert SECRET_PHONE not in text and "61 23 45 67" not in text
    control.dispose()

    broken = sa.create_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    with broken.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE subject_requests (request_id INTEGER PRIMARY KEY)")
    unreadable = load_requests(broken, ANCHOR, tz)
    assert not unreadable.available and not unreadable.open and not unreadable.completed
    assert unreadable.note == "the request register could not be read (OperationalError)"
    report = gather_report(config, broken, ANCHOR)
    assert "The request register could not be read (OperationalError)." in render_markdown(report)
    assert "The request register could not be read (OperationalError)." in render_html(report, "<svg></svg>")
    assert "## 6. Failures in the last 30 days" in render_markdown(report)
    broken.dispose()


def test_chart_is_plain_svg_with_a_bar_per_month_and_purpose() -> None:
    months = month_labels(ANCHOR)
    frame = pd.DataFrame(0, index=months, columns=["bookkeeping", "security"])
    frame.loc[months[0], "bookkeeping"] = 5
    frame.loc[months[3], "security"] = 12
    frame.loc[months[3], "bookkeeping"] = 1
    svg = expiry_chart_svg(frame, ANCHOR)
    assert svg.count('class="bar"') == 3
    assert "security, Sep 2025: 12 rows" in svg

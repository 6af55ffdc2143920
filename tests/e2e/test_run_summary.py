"""What `retention run` prints when the run has ended: what was applied per table (the ledger's own count for
the run), that the checks passed or which failed, and where the day's compliance report is."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.app import app
from pipelines.instance import local_instance
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from retention.quality.checks import IDENTIFIERS
from tests.support import point_engine_at

ANCHOR = dt.date(2025, 6, 1)
NUMBER = re.compile(r"\d[\d,]*")


def ledger_entries(control_url: str, run_id: str) -> int:
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT COUNT(*) FROM ledger WHERE run_id = :run")
            return int(conn.execute(query, {"run": run_id}).scalar_one())
    finally:
        engine.dispose()


def check_count(run_id: str) -> int:
    with local_instance() as instance:
        return len(list(instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)))


def run(day: dt.date) -> tuple[str, str]:
    said = CliRunner().invoke(app, ["run", "--as-of", day.isoformat(), "--confirm-large-plan"])
    assert said.exit_code == 0, said.output
    assert "Traceback" not in said.output
    (run_id,) = re.findall(r"\(run ([0-9a-f-]{36})\)", said.output)
    return said.output, run_id


@pytest.fixture
def estate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], str]:
    urls = {source: f"sqlite:///{tmp_path / (source + '.db')}" for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=60, seed=13, anchor=ANCHOR)
    control_url = f"sqlite:///{tmp_path / 'control.db'}"
    point_engine_at(monkeypatch, urls, control_url, tmp_path / "var")
    monkeypatch.setenv("NO_COLOR", "1")
    return urls, control_url


def test_the_summary_says_what_was_applied_that_the_checks_passed_and_where_the_report_is(
    estate: tuple[dict[str, str], str],
) -> None:
    _, control_url = estate
    output, run_id = run(ANCHOR)
    applied = output[output.index(f"Applied for {ANCHOR}") :]
    (total,) = [line for line in applied.splitlines() if " total " in line][:1]
    deleted, updated, entries = (int(n.replace(",", "")) for n in NUMBER.findall(total))
    assert entries == ledger_entries(control_url, run_id) > 0
    assert deleted > 0 and updated > 0
    assert f"checks: all {check_count(run_id)} passed" in output
    (report,) = re.findall(r"compliance report: (\S+)", output)
    assert Path(report).is_file() and Path(report).name == f"compliance-report-{ANCHOR}.html"

    # the next day has far less to do: the summary shows that day's changes only
    later, later_run = run(ANCHOR + dt.timedelta(days=1))
    applied = later[later.index("Applied for") :]
    (total,) = [line for line in applied.splitlines() if " total " in line][:1]
    assert int(NUMBER.findall(total)[-1].replace(",", "")) == ledger_entries(control_url, later_run) < entries


def test_the_summary_names_the_checks_that_failed(estate: tuple[dict[str, str], str]) -> None:
    urls, _ = estate
    engine = sa.create_engine(urls["enrolment"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customers SET email = 'no address given' WHERE customer_id % 5 = 0"))
    engine.dispose()
    output, run_id = run(ANCHOR)  # a warning, not a blocking check: the run goes on
    assert f"checks: 1 of {check_count(run_id)} failed" in output
    assert f"check snapshot/enrolment:{IDENTIFIERS} failed" in output
    assert "checks: all" not in output

"""What a data engineer reads in the Dagster UI after a real daily run, read back from the instance: each
snapshot's column schema (the catalog's columns, personal ones tagged with their category, the same as the
definition's), row counts that are the tables' counts, the plan as a table whose rows are the plan's and the
ledger's counts, links to the report and the Data Docs; and none of it holds a value of the estate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlparse

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from assets.planning import RETENTION_PLAN
from assets.report import COMPLIANCE_REPORT
from assets.snapshots import COLUMN_SCHEMA, snapshot_asset_key
from cli.app import app
from pipelines.instance import local_instance
from pipelines.runner import run_daily
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from tests.e2e.test_quality import row_counts
from tests.support import CATALOG_FILE, find_leaks, personal_values, point_engine_at, stored_asset

ANCHOR = dt.date(2025, 6, 1)
PEOPLE = 80
SEED = 47


def catalogued(entry: dict[str, Any]) -> set[str]:
    """Every column a table's catalog entry names, read from the YAML itself (not the loaded model)."""
    subject = entry["subject"]
    names = {*entry["primary_key"], *subject.get("identifiers", {}).values(), *entry.get("interactions", [])}
    names |= {*entry.get("columns", {}), *entry.get("events", {}).values(), *entry.get("not_personal", [])}
    names |= {c for c in (subject.get("foreign_key"), entry.get("record_date")) if c}
    return names


def latest(instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str) -> dg.AssetMaterialization:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.run_id == run_id, f"{key.to_user_string()} was not materialised by the run"
    assert event.asset_materialization is not None
    return event.asset_materialization


def ledger_counts(control_url: str, run_id: str) -> dict[tuple[str, str, str, str], int]:
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT source, table_name, action, purpose, COUNT(*) FROM ledger WHERE run_id = :run "
                    "GROUP BY source, table_name, action, purpose"
                ),
                {"run": run_id},
            ).all()
    finally:
        engine.dispose()
    return {(s, t, a, p): n for s, t, a, p, n in rows}


def test_the_ui_shows_column_schemas_row_counts_the_plan_and_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {source: f"sqlite:///{tmp_path / (source + '.db')}" for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=PEOPLE, seed=SEED, anchor=ANCHOR)
    control_url = f"sqlite:///{tmp_path / 'control.db'}"
    point_engine_at(monkeypatch, urls, control_url, tmp_path / "var")
    before = row_counts(urls)  # the snapshot reads the tables before apply changes them
    values = personal_values(urls)
    catalog = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))

    result = run_daily(ANCHOR, confirm_large_plan=True)
    assert result.success, [e.message for e in result.all_events if e.is_failure]

    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    with local_instance() as instance:
        snapshots = {s: latest(instance, snapshot_asset_key(s), result.run_id) for s in DEMO_SOURCES}
        plan_mat = latest(instance, RETENTION_PLAN, result.run_id)
        report_mat = latest(instance, COMPLIANCE_REPORT, result.run_id)

    for source, mat in snapshots.items():
        tables = catalog["sources"][source]["tables"]
        schema = mat.metadata[COLUMN_SCHEMA].value
        assert isinstance(schema, dg.TableSchema)
        # the same schema the definition shows before any run
        assert schema == graph.get(snapshot_asset_key(source)).metadata[COLUMN_SCHEMA].value
        columns = {c.name: c for c in schema.columns}
        assert set(columns) == {f"{t}.{c}" for t, entry in tables.items() for c in catalogued(entry)}
        for table, entry in tables.items():
            personal = entry.get("columns", {})
            for name in catalogued(entry):
                tags = columns[f"{table}.{name}"].tags
                if name in personal:
                    assert tags["category"] == personal[name]["category"] and "pii" in tags, (table, name)
                else:
                    assert "category" not in tags and "pii" not in tags, (table, name)
            for name in entry["primary_key"]:
                assert columns[f"{table}.{name}"].type == "key"
            for name in entry.get("interactions", []):
                assert columns[f"{table}.{name}"].type == "timestamp"
        # row counts: the total and one row per table, as counted with SQL before the run
        expected = {table: before[f"{source}.{table}"] for table in tables}
        assert mat.metadata["dagster/row_count"].value == sum(expected.values())
        per_table = mat.metadata["row_counts"].value
        assert isinstance(per_table, dg.TableMetadataValue)
        assert {r.data["table"]: r.data["rows"] for r in per_table.records} == expected

    # the e-mail of a customer is personal data, and the asset catalog says so
    enrolment = snapshots["enrolment"].metadata[COLUMN_SCHEMA].value
    assert isinstance(enrolment, dg.TableSchema)
    email = {c.name: c for c in enrolment.columns}["customers.email"]
    assert email.tags == {"identifier": "email", "category": "email", "pii": "", "anonymizer": "surrogate_email"}

    # the plan as a table: its rows are the stored plan's counts and what the ledger recorded
    table = plan_mat.metadata["plan_table"].value
    assert isinstance(table, dg.TableMetadataValue)
    shown = {
        (str(r.data["source"]), str(r.data["table"]), str(r.data["action"]), str(r.data["purpose"])): int(
            cast(int, r.data["rows"])
        )
        for r in table.records
    }
    plan = stored_asset(RETENTION_PLAN, ANCHOR)
    planned = {(r.source, r.table, str(r.action), r.purpose): int(r.rows) for r in plan.summary().itertuples()}
    assert shown == planned and sum(shown.values()) == plan_mat.metadata["planned_actions"].value
    assert sum(shown.values()) > 0, "the demo day has actions due"
    assert shown == ledger_counts(control_url, result.run_id)

    # links that open the report and the Data Docs
    for name in ("html", "markdown", "data_docs"):
        link = report_mat.metadata[name]
        assert isinstance(link, dg.UrlMetadataValue), name
        parsed = urlparse(link.url)
        assert parsed.scheme == "file" and Path(unquote(parsed.path)).is_file(), link.url
    html = report_mat.metadata["html"]
    assert isinstance(html, dg.UrlMetadataValue)
    assert Path(unquote(urlparse(html.url).path)).name == f"compliance-report-{ANCHOR}.html"

    # nothing shown holds a personal value of the estate
    shown_text = {
        key.to_user_string(): repr(dict(mat.metadata)).encode()
        for key, mat in [*((snapshot_asset_key(s), m) for s, m in snapshots.items()), (RETENTION_PLAN, plan_mat)]
    }
    shown_text["definitions"] = repr([graph.get(snapshot_asset_key(s)).metadata for s in DEMO_SOURCES]).encode()
    assert values and find_leaks(values, shown_text) == []


def test_a_day_before_the_first_partition_is_refused_naming_the_policy_s_first_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = {source: f"sqlite:///{tmp_path / (source + '.db')}" for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=10, seed=SEED, anchor=ANCHOR)
    point_engine_at(monkeypatch, urls, f"sqlite:///{tmp_path / 'control.db'}", tmp_path / "var")
    monkeypatch.setenv("NO_COLOR", "1")

    said = CliRunner().invoke(app, ["run", "--as-of", "2023-12-31"])

    assert said.exit_code == 1 and "Traceback" not in said.output
    assert said.output.startswith(
        "error: --as-of 2023-12-31: the daily job has a partition for each day from 2024-01-01"
    )
    assert "first_partition_day in " in said.output and "policy.yaml" in said.output
    assert not (tmp_path / "var" / "dagster").exists(), "nothing ran"

"""The real daily job on a demo estate, per backend: snapshots count every row, and nothing stored leaks.

The design's first rule is that the engine is not a new leak: whatever Dagster keeps (pickled asset outputs,
the event log, compute logs, metadata), the ledger, the reports and the Data Docs must not hold an e-mail,
name, phone, address or free text of the sources. The scan below looks for every personal value the estate
held before the run, byte for byte, in every file under RETENTION_VAR (DAGSTER_HOME is inside it) and in every
cell of the control database.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import pickle
import sqlite3
from pathlib import Path
from typing import cast

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from retention.demo.schema import DEMO_SOURCES
from tests.databases import ServerDatabases
from tests.support import (
    CATALOG_FILE,
    SECRET,
    TOKEN,
    database_cells,
    find_leaks,
    personal_values,
    point_engine_at,
    stored_asset,
    stored_bytes,
)

ANCHOR = dt.date(2025, 6, 1)
PEOPLE = 150
SEED = 23


def count_rows(url: str) -> dict[str, int]:
    """Rows per table, read with SQL, independent of the engine's reader."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
                for table in sa.inspect(engine).get_table_names()
            }
    finally:
        engine.dispose()


def primary_keys(url: str, table: str, pk: str) -> list[int]:
    """The table's keys in order, to compare with the snapshot's pk column."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT {pk} FROM {table} ORDER BY {pk}")).scalars())
    finally:
        engine.dispose()


def test_leak_scanner_finds_planted_values(tmp_path: Path) -> None:
    """The scan must be able to fail: values hidden in a pickle, a long SQLite cell, escaped JSON, a log and the
    control database are found, a value inside a longer one too, and digits inside a bigger number are not."""
    var = tmp_path / "var"
    var.mkdir()
    (var / "frame.pkl").write_bytes(pickle.dumps(pd.DataFrame({"v": ["anna.hansen@example.dk"]})))
    conn = sqlite3.connect(var / "log.db")
    conn.execute("CREATE TABLE t (body TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", ("x" * 5000 + "Vestergade 12, 8000 Aarhus C" + "y" * 5000,))
    conn.commit()
    conn.close()
    (var / "event.json").write_text(json.dumps({"name": "Søren Ærø"}))
    (var / "run.out").write_text("called 87654321 about it; at 1748779234.12345678")
    control = sa.create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    with control.begin() as c:
        c.exec_driver_sql("CREATE TABLE ledger (subject TEXT)")
        c.exec_driver_sql("INSERT INTO ledger VALUES ('bo.berg@example.dk')")
    control.dispose()
    values = {
        "anna.hansen@example.dk": "a",
        "Vestergade 12, 8000 Aarhus C": "b",
        "Vestergade 12": "b2",
        "Søren Ærø": "c",
        "87654321": "d",
        "12345678": "e",
        "not.there@example.dk": "f",
        "bo.berg@example.dk": "g",
    }
    files = {**stored_bytes(var), "control": database_cells(f"sqlite:///{tmp_path / 'control.db'}")}
    leaks = find_leaks(values, files)
    assert {leak.split(" (from")[0].strip("'") for leak in leaks} == set(values) - {"12345678", "not.there@example.dk"}
    assert any(leak.startswith("'Vestergade 12' (from b2)") and "'log.db (cells)'" in leak for leak in leaks)
    assert find_leaks({"12345678": "e", "not.there@example.dk": "f"}, files) == []


@pytest.mark.servers
def test_daily_job_snapshots_every_row_and_stores_no_personal_value(
    databases: ServerDatabases, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run the real Dagster job in-process on a generated estate and inspect everything it stored."""
    from retention.demo.generator import generate_demo_estate

    urls = {source: databases.new_url(source) for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=PEOPLE, seed=SEED, anchor=ANCHOR)
    control_url = databases.new_url("control")
    point_engine_at(monkeypatch, urls, control_url, tmp_path / "var")
    # read before the run: the job applies its plan, so afterwards rows are gone and values replaced
    in_db = {source: count_rows(url) for source, url in urls.items()}
    catalog = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    keys = {
        (source, table): primary_keys(urls[source], table, entry["primary_key"][0])
        for source in DEMO_SOURCES
        for table, entry in catalog["sources"][source]["tables"].items()
    }
    values = personal_values(urls)

    from pipelines.runner import run_daily

    result = run_daily(ANCHOR, confirm_large_plan=True)
    failures = [e.message for e in result.all_events if e.is_failure]
    assert result.success, failures

    materialized = {
        tuple(m.asset_key.path): m for m in (e.materialization for e in result.get_asset_materialization_events())
    }
    assert {("snapshot", s) for s in DEMO_SOURCES} | {("retention_plan",)} <= set(materialized)
    for source in DEMO_SOURCES:
        tables = catalog["sources"][source]["tables"]
        assert set(tables) <= set(in_db[source])
        expected = {table: in_db[source][table] for table in tables}
        assert all(n > 0 for n in expected.values()), expected
        metadata = materialized[("snapshot", source)].metadata
        counts = cast(dg.TableMetadataValue, metadata["row_counts"]).records
        assert {r.data["table"]: r.data["rows"] for r in counts} == expected
        assert metadata["dagster/row_count"].value == sum(expected.values())
        # the stored output itself, through the job's IO manager: the same rows, key for key
        stored = stored_asset(dg.AssetKey(["snapshot", source]), ANCHOR)
        assert {t: s.rows for t, s in stored.items()} == expected
        for table in tables:
            frame = stored[table].frame
            assert frame["pk"].tolist() == keys[(source, table)], f"{source}.{table}"
            for column in (c for c in frame.columns if c.startswith("id:")):
                tokens = frame[column].dropna()
                assert tokens.map(lambda v: bool(TOKEN.match(v))).all(), f"{source}.{table}.{column}"

    files = stored_bytes(tmp_path / "var")
    assert any(name.startswith("intermediate/snapshot/") for name in files), sorted(files)
    assert not any(n.startswith("dagster/storage/") and "/compute_logs/" not in n for n in files), sorted(files)
    assert any(name.startswith("dagster/history/") for name in files), sorted(files)
    files["control database (cells)"] = database_cells(control_url)
    assert len(files["control database (cells)"]) > 1000, "the ledger should record the applied plan"
    assert len(values) > 500, "the estate should give hundreds of personal values to look for"
    secrets = {base64.b64encode(SECRET).decode(): "RETENTION_KEY"}
    assert find_leaks({**values, **secrets}, files) == []
    assert not any(SECRET in data for data in files.values()), "the raw key bytes are stored"

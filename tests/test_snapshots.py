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
import hashlib
import json
import pickle
import re
import sqlite3
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from retention.catalog import Category
from retention.demo.schema import DEMO_SOURCES
from tests.databases import ServerDatabases

ANCHOR = dt.date(2025, 6, 1)
PEOPLE = 150
SEED = 23
CATALOG_FILE = Path(__file__).resolve().parent.parent / "config" / "catalog.yaml"
SECRET = hashlib.sha256(b"retention test key for the snapshot leak scan").digest()
MIN_NEEDLE = 6
TOKEN = re.compile(r"^[epc]:[0-9a-f]{32}$")


def catalog_columns() -> dict[str, dict[str, dict[str, str]]]:
    """source -> table -> personal-data column -> category, read from the YAML itself (not the loaded model)."""
    raw = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    return {
        source: {
            table: {col: spec["category"] for col, spec in (entry.get("columns") or {}).items()}
            for table, entry in src["tables"].items()
        }
        for source, src in raw["sources"].items()
    }


def as_text(value: object) -> str:
    """The text a value would have if it leaked: dates as ISO dates, everything else as str()."""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def personal_values(urls: dict[str, str]) -> dict[str, str]:
    """Every distinct non-null value of every catalogued personal-data column (and lower-cased e-mails).

    Maps the value to where it came from, for the failure message. Values shorter than MIN_NEEDLE characters
    (postal codes, scores) are too generic to search for.
    """
    found: dict[str, str] = {}
    for source, tables in catalog_columns().items():
        engine = sa.create_engine(urls[source])
        try:
            with engine.connect() as conn:
                for table, columns in tables.items():
                    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
                    for column, category in columns.items():
                        rows = conn.execute(sa.select(t.c[column]).where(t.c[column].is_not(None)).distinct())
                        for (value,) in rows:
                            text = as_text(value)
                            variants = [text]
                            if category == Category.EMAIL:
                                variants += [text.lower(), text.strip().lower()]
                            for variant in variants:
                                if len(variant) >= MIN_NEEDLE:
                                    found.setdefault(variant, f"{source}.{table}.{column}")
        finally:
            engine.dispose()
    return found


# a number on its own: not part of a longer run of digits, nor of a decimal number such as a float timestamp
STANDALONE_NUMBER = re.compile(rb"(?<!\d)(?<!\d\.)\d+(?!\d)(?!\.\d)")


def needle_forms(value: str) -> list[bytes]:
    """The byte forms a leaked value would take: UTF-8 (pickles, SQLite, logs) and JSON's \\u escapes."""
    return list(dict.fromkeys([value.encode(), json.dumps(value)[1:-1].encode()]))


def occurs(form: bytes, data: bytes) -> bool:
    """A value made only of digits (a phone like 12345678) must stand alone: inside a longer number (a float
    timestamp in the event log) it is not that value."""
    if form.isdigit():
        return form in data and form in set(STANDALONE_NUMBER.findall(data))
    return form in data


def trie_pattern(words: set[bytes]) -> re.Pattern[bytes]:
    """One regex for many literals, shaped as a trie, so a scan costs one pass instead of one pass per value.

    A word that is a prefix of another ends in an optional tail, so `search` finds any word that occurs.
    """
    end = -1
    trie: dict[int, dict] = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[end] = {}

    def emit(node: dict[int, dict]) -> bytes:
        alternatives = []
        for byte in sorted(k for k in node if k != end):
            child, literal = node[byte], bytes([byte])
            while len(child) == 1 and end not in child:  # a chain without branches is one literal
                ((next_byte, child),) = child.items()
                literal += bytes([next_byte])
            alternatives.append(re.escape(literal) + emit(child))
        if not alternatives:
            return b""
        body = alternatives[0] if len(alternatives) == 1 else b"(?:" + b"|".join(alternatives) + b")"
        return b"(?:" + body + b")?" if end in node else body

    return re.compile(emit(trie) if words else rb"(?!)")


def sqlite_text(path: Path) -> bytes:
    """All text and blob cells of a SQLite file, reassembled (a long value may span overflow pages on disk)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return b""
    parts: list[bytes] = []
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for name in names:
            for row in conn.execute(f'SELECT * FROM "{name}"'):
                for cell in row:
                    if isinstance(cell, str):
                        parts.append(cell.encode())
                    elif isinstance(cell, bytes):
                        parts.append(cell)
    except sqlite3.DatabaseError:
        return b""
    finally:
        conn.close()
    return b"\0".join(parts)


def stored_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` as raw bytes, plus the reassembled cells of every SQLite file.

    Great Expectations copies its own fonts and images into the Data Docs (`static/`); they are the same for
    every estate and are left out.
    """
    out: dict[str, bytes] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if "data-docs/static/" in name:
            continue
        data = path.read_bytes()
        out[name] = data
        if data.startswith(b"SQLite format 3\0"):
            out[f"{name} (cells)"] = sqlite_text(path)
    return out


def database_cells(url: str) -> bytes:
    """Every text cell of every table of a database (the control database: ledger, holds, requests)."""
    engine = sa.create_engine(url)
    parts: list[bytes] = []
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    parts += [
                        cell.encode() if isinstance(cell, str) else cell
                        for cell in row
                        if isinstance(cell, str | bytes)
                    ]
    finally:
        engine.dispose()
    return b"\0".join(parts)


def find_leaks(values: dict[str, str], files: dict[str, bytes]) -> list[str]:
    """`value (from column) in [files]` for every value found; empty when nothing leaked.

    One pass decides (a trie of all literals, plus the set of standalone numbers); only when something was
    found is every value looked up on its own, to name them all.
    """
    blob = b"\n\0\n".join(files.values())
    forms = {value: needle_forms(value) for value in values}
    literals = {f for fs in forms.values() for f in fs if not f.isdigit()}
    numbers = {f for fs in forms.values() for f in fs if f.isdigit()}
    if trie_pattern(literals).search(blob) is None and not numbers & set(STANDALONE_NUMBER.findall(blob)):
        return []
    leaks = []
    for value, origin in values.items():
        where = sorted({name for name, data in files.items() for f in forms[value] if occurs(f, data)})
        if where:
            leaks.append(f"{value!r} (from {origin}) in {where}")
    return leaks


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


def metadata_table_counts(text: str) -> dict[str, int]:
    """The `tables` Markdown metadata of a snapshot materialization: | table | rows |."""
    counts = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            counts[cells[0]] = int(cells[1])
    return counts


def point_engine_at(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str], control_url: str, var: Path) -> None:
    """Environment of a non-demo run: the catalog's URL variables, a key from the environment, a private var/."""
    for source, url in urls.items():
        monkeypatch.setenv(f"RETENTION_{source.upper()}_URL", url)
    monkeypatch.setenv("RETENTION_CONTROL_URL", control_url)
    monkeypatch.setenv("RETENTION_KEY", "k1:" + base64.b64encode(SECRET).decode())
    monkeypatch.delenv("RETENTION_KEY_FILE", raising=False)
    monkeypatch.setenv("RETENTION_VAR", str(var))
    monkeypatch.setenv("DAGSTER_HOME", str(var / "dagster"))


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
        tuple(e.asset_key.path): e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
    }
    assert {("snapshot", s) for s in DEMO_SOURCES} | {("retention_plan",)} <= set(materialized)
    for source in DEMO_SOURCES:
        tables = catalog["sources"][source]["tables"]
        assert set(tables) <= set(in_db[source])
        expected = {table: in_db[source][table] for table in tables}
        assert all(n > 0 for n in expected.values()), expected
        metadata = materialized[("snapshot", source)].metadata
        assert metadata_table_counts(metadata["tables"].value) == expected
        assert metadata["rows"].value == sum(expected.values())
        # the stored output itself, through the job's IO manager: the same rows, key for key
        stored = result.asset_value(dg.AssetKey(["snapshot", source]))
        assert {t: s.rows for t, s in stored.items()} == expected
        for table in tables:
            frame = stored[table].frame
            assert frame["pk"].tolist() == keys[(source, table)], f"{source}.{table}"
            for column in (c for c in frame.columns if c.startswith("id:")):
                tokens = frame[column].dropna()
                assert tokens.map(lambda v: bool(TOKEN.match(v))).all(), f"{source}.{table}.{column}"

    files = stored_bytes(tmp_path / "var")
    assert any(name.startswith("dagster/storage/snapshot/") for name in files), sorted(files)
    assert any(name.startswith("dagster/history/") for name in files), sorted(files)
    files["control database (cells)"] = database_cells(control_url)
    assert len(files["control database (cells)"]) > 1000, "the ledger should record the applied plan"
    assert len(values) > 500, "the estate should give hundreds of personal values to look for"
    secrets = {base64.b64encode(SECRET).decode(): "RETENTION_KEY"}
    assert find_leaks({**values, **secrets}, files) == []
    assert not any(SECRET in data for data in files.values()), "the raw key bytes are stored"

"""Shared test helpers: the environment of a non-demo run, table digests, and the personal-value leak scan.

The leak scan looks for every personal value of an estate, byte for byte, in files the engine wrote: the
design's first rule is that the engine is not a new leak.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from retention.config.catalog import RAW_FORBIDDEN, Category
from retention.rules.calendar import utc
from retention.storage.schema import leases

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
    """Every distinct non-null value of every catalogued column whose category must never leave the source raw
    (`RAW_FORBIDDEN`), and lower-cased e-mails.

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
                        if Category(category) not in RAW_FORBIDDEN:
                            continue
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


def point_engine_at(monkeypatch: pytest.MonkeyPatch, urls: dict[str, str], control_url: str, var: Path) -> None:
    """Environment of a non-demo run: the catalog's URL variables, a key from the environment, a private var/."""
    for source, url in urls.items():
        monkeypatch.setenv(f"RETENTION_{source.upper()}_URL", url)
    monkeypatch.setenv("RETENTION_CONTROL_URL", control_url)
    monkeypatch.setenv("RETENTION_KEY", "k1:" + base64.b64encode(SECRET).decode())
    monkeypatch.delenv("RETENTION_KEY_FILE", raising=False)
    monkeypatch.setenv("RETENTION_VAR", str(var))
    monkeypatch.setenv("DAGSTER_HOME", str(var / "dagster"))


def table_digests(url: str) -> dict[str, str]:
    """A digest of every table's full content, in primary-key order."""
    engine = sa.create_engine(url)
    out = {}
    try:
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            for table in md.sorted_tables:
                rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
                out[table.name] = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    finally:
        engine.dispose()
    return out


def wait_for_leases_to_expire(control_url: str) -> None:
    """Sleep until every lease in the control database has expired, as a killed run's do when nobody beats."""
    engine = sa.create_engine(control_url)
    try:
        with engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(leases.c.expires_at))).scalar_one()
    finally:
        engine.dispose()
    if last is not None:
        time.sleep(max(0.0, (utc(last) - dt.datetime.now(dt.UTC)).total_seconds()) + 0.3)


def stored_asset(key: dg.AssetKey, day: dt.date) -> Any:
    """An asset's value for a day as the last run stored it, through the job's IO manager."""
    from pipelines.definitions import defs
    from pipelines.instance import local_instance

    with local_instance() as instance:
        return defs.load_asset_value(key, partition_key=day.isoformat(), instance=instance)

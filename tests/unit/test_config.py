"""The configuration fails closed: every broken file gives one message naming the file, the entry and the fix."""

from __future__ import annotations

import copy
import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from retention.config.catalog import Catalog
from retention.config.database import check_against_database
from retention.config.loading import load_config
from retention.config.problems import ConfigError
from retention.demo.schema import demo_metadata

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "config" / "catalog.yaml"
POLICY = ROOT / "config" / "policy.yaml"
REQUESTS = ROOT / "config" / "requests.yaml"
CASES = yaml.safe_load((Path(__file__).resolve().parents[1] / "config_cases" / "cases.yaml").read_text())


def _walk(doc: Any, path: str) -> tuple[Any, Any]:
    parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        doc = doc[part]
    return doc, parts[-1]


def _generated(spec: dict) -> str:
    """Texts too large to write out in cases.yaml: hostile documents made by rule."""
    if spec["kind"] == "nested_lists":
        return "sources: " + "[" * spec["depth"] + "]" * spec["depth"] + "\n"
    if spec["kind"] == "nested_mappings":
        return "purposes: " + "{a: " * spec["depth"] + "1" + "}" * spec["depth"] + "\n"
    if spec["kind"] == "alias_bomb":  # billion laughs: each level nine aliases of the one before
        lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        for level in range(1, spec["levels"]):
            lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown generated text {spec['kind']!r}")


def _edited(case: dict, original: Path) -> str:
    if "text" in case:
        return str(case["text"])
    if "generate" in case:
        return _generated(case["generate"])
    text = original.read_text()
    if "replace" in case or "append" in case:
        for old, new in case.get("replace", []):
            assert text.count(old) == 1, f"{old!r} is not once in {original.name}"
            text = text.replace(old, new)
        return text + case.get("append", "")
    doc = copy.deepcopy(yaml.safe_load(text))
    for path, value in case.get("set", {}).items():
        parent, last = _walk(doc, path)
        parent[last] = value
    for path in case.get("delete", []):
        parent, last = _walk(doc, path)
        del parent[last]
    for path, name in case.get("rename", {}).items():
        parent, last = _walk(doc, path)
        parent[name] = parent.pop(last)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _write_case(case: dict, tmp_path: Path) -> tuple[Path, Path]:
    """The shipped catalog, policy and requests.yaml in `tmp_path`, the case's file changed as it says:
    edited, replaced by a text (written in `encoding`), a directory in its place, or missing."""
    files = {"catalog": CATALOG, "policy": POLICY, "requests": REQUESTS}
    assert case["file"] in files, case
    written = {}
    for kind, original in files.items():
        target = tmp_path / original.name
        written[kind] = target
        if case["file"] != kind:
            target.write_text(original.read_text())
        elif case.get("directory"):
            target.mkdir()
            (target / "catalog.yaml").write_text(original.read_text())
        elif case.get("missing"):
            continue
        else:
            target.write_bytes(_edited(case, original).encode(case.get("encoding", "utf-8")))
    return written["catalog"], written["policy"]


@pytest.fixture(autouse=True)
def _requests_beside_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETENTION_REQUESTS", raising=False)


def test_shipped_configuration_loads() -> None:
    config = load_config(CATALOG, POLICY)
    assert set(config.catalog.sources) == {"enrolment", "newsletter", "elearning"}
    assert config.policy.bookkeeping_hold.purpose in config.policy.purposes


@pytest.mark.parametrize("case", CASES["load"], ids=[c["name"] for c in CASES["load"]])
def test_broken_configuration(case: dict, tmp_path: Path) -> None:
    catalog, policy = _write_case(case, tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(catalog, policy)
    message = str(caught.value)
    assert "Traceback" not in message and caught.value.problems
    for fragment in case["expect"]:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert caught.value.__cause__ is None, "a problem is reported, not chained to the exception behind it"


@pytest.fixture(scope="module")
def empty_demo_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, sa.Engine]:
    folder = tmp_path_factory.mktemp("schema")
    engines = {}
    for source in ("enrolment", "newsletter", "elearning"):
        engine = sa.create_engine(f"sqlite:///{folder / source}.db")
        demo_metadata(source).create_all(engine)
        engines[source] = engine
    return engines


def test_shipped_configuration_matches_the_demo_schema(empty_demo_schema: dict[str, sa.Engine]) -> None:
    config = load_config(CATALOG, POLICY)
    for source, engine in empty_demo_schema.items():
        problems, warnings = check_against_database(config, source, engine)
        assert problems == [] and warnings == [], [str(p) for p in problems + warnings]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.db*"))}


@pytest.mark.parametrize("case", CASES["database"], ids=[c["name"] for c in CASES["database"]])
def test_configuration_against_database(case: dict, tmp_path: Path, empty_demo_schema: dict[str, sa.Engine]) -> None:
    """Each case on its own copy of the empty demo schema, changed by the case's `sql`; the check only reads:
    no database file changes."""
    folder = tmp_path / "databases"
    folder.mkdir()
    engines = {}
    for source, template in empty_demo_schema.items():
        assert template.url.database is not None
        shutil.copyfile(template.url.database, folder / f"{source}.db")
        engines[source] = sa.create_engine(f"sqlite:///{folder / source}.db")
    try:
        for source, statements in case.get("sql", {}).items():
            with engines[source].begin() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        before = _digests(folder)
        catalog, policy = _write_case(case, tmp_path)
        config = load_config(catalog, policy)
        problems, warnings = [], []
        for source, engine in engines.items():
            found, warned = check_against_database(config, source, engine)
            problems += found
            warnings += warned
    finally:
        for engine in engines.values():
            engine.dispose()
    assert _digests(folder) == before, "checking the configuration changed a database file"
    message = str(ConfigError(problems))
    if case.get("expect"):
        for fragment in case["expect"]:
            assert fragment in message, f"{fragment!r} not in:\n{message}"
    else:
        assert problems == [], message
    warned_text = "\n".join(str(w) for w in warnings)
    for fragment in case.get("warn", []):
        assert fragment in warned_text, f"{fragment!r} not in the warnings:\n{warned_text}"


def test_unclassified_columns_are_warnings(empty_demo_schema: dict[str, sa.Engine], tmp_path: Path) -> None:
    doc = yaml.safe_load(CATALOG.read_text())
    doc["sources"]["enrolment"]["tables"]["enrolments"]["not_personal"].remove("channel")
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(doc))
    config = load_config(tmp_path / "catalog.yaml", POLICY)
    problems, warnings = check_against_database(config, "enrolment", empty_demo_schema["enrolment"])
    assert problems == []
    assert [str(w) for w in warnings] == [
        f"{tmp_path / 'catalog.yaml'}: sources.enrolment.tables.enrolments: column 'channel' is not classified\n"
        "    fix: list it under 'columns' (personal data) or 'not_personal'"
    ]
    assert isinstance(config.catalog, Catalog)

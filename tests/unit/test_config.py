"""The configuration fails closed: every broken file gives one message naming the file, the entry and the fix."""

from __future__ import annotations

import copy
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
CASES = yaml.safe_load((Path(__file__).resolve().parents[1] / "config_cases" / "cases.yaml").read_text())


def _walk(doc: Any, path: str) -> tuple[Any, Any]:
    parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        doc = doc[part]
    return doc, parts[-1]


def _write_case(case: dict, tmp_path: Path) -> tuple[Path, Path]:
    files = {"catalog": CATALOG, "policy": POLICY}
    written = {}
    for kind, original in files.items():
        target = tmp_path / original.name
        if case["file"] != kind:
            target.write_text(original.read_text())
        elif "text" in case:
            target.write_text(case["text"])
        else:
            doc = copy.deepcopy(yaml.safe_load(original.read_text()))
            for path, value in case.get("set", {}).items():
                parent, last = _walk(doc, path)
                parent[last] = value
            for path in case.get("delete", []):
                parent, last = _walk(doc, path)
                del parent[last]
            target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written[kind] = target
    return written["catalog"], written["policy"]


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
    for fragment in case["expect"]:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


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


@pytest.mark.parametrize("case", CASES["database"], ids=[c["name"] for c in CASES["database"]])
def test_configuration_against_database(case: dict, tmp_path: Path, empty_demo_schema: dict[str, sa.Engine]) -> None:
    catalog, policy = _write_case(case, tmp_path)
    config = load_config(catalog, policy)
    problems = []
    for source, engine in empty_demo_schema.items():
        problems += check_against_database(config, source, engine)[0]
    message = str(ConfigError(problems))
    for fragment in case["expect"]:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


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

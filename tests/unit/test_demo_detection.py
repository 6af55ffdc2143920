"""The generated demo key serves the shipped demo only: an edited catalog is someone's estate and needs a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from retention.config.loading import load_config
from retention.storage.engines import DEMO_CATALOG_SHA256, catalog_digest, is_demo

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch):
    for name in ("ENROLMENT", "NEWSLETTER", "ELEARNING"):
        monkeypatch.delenv(f"RETENTION_{name}_URL", raising=False)
    return load_config(CONFIG / "catalog.yaml", CONFIG / "policy.yaml").catalog


def test_the_shipped_catalog_is_the_demo(shipped) -> None:
    assert catalog_digest(shipped) == DEMO_CATALOG_SHA256, (
        f"config/catalog.yaml changed: set DEMO_CATALOG_SHA256 in retention/storage/engines.py to "
        f"{catalog_digest(shipped)!r}"
    )
    assert is_demo(shipped)


def test_an_edited_catalog_on_the_demo_urls_is_not_the_demo(shipped) -> None:
    """Changing one anonymiser (or anything else) while keeping the demo's SQLite files is not the demo."""
    customers = shipped.sources["enrolment"].tables["customers"]
    columns = {
        **customers.columns,
        "employer": customers.columns["employer"].model_copy(update={"anonymizer": "token"}),
    }
    edited_table = customers.model_copy(update={"columns": columns})
    enrolment = shipped.sources["enrolment"].model_copy(
        update={"tables": {**shipped.sources["enrolment"].tables, "customers": edited_table}}
    )
    edited = shipped.model_copy(update={"sources": {**shipped.sources, "enrolment": enrolment}})
    assert not is_demo(edited)


def test_the_demo_catalog_on_other_databases_is_not_the_demo(shipped, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_NEWSLETTER_URL", "postgresql+psycopg://postgres@127.0.0.1/newsletter")
    assert not is_demo(shipped)

"""The webshop's catalog and policy pass the engine's own check against the real databases, on every backend:
every table and column the catalog names exists with a fitting type (text dates with their formats), every
column of the databases is classified, and the table of no personal data is declared as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from retention.config.database import check_against_database
from tests.databases import ServerDatabases
from tests.webshop.estate import webshop_estate

pytestmark = pytest.mark.servers


def test_the_webshop_catalog_and_policy_pass_check_config(
    backend: str, databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = webshop_estate(monkeypatch, databases, tmp_path)
    assert shop.config.catalog.locale_of("shop") == "en_GB" and shop.config.catalog.locale_of("hr") == "de_DE"
    with shop.connect() as estate:
        assert set(estate.sources) == {"shop", "hr"}
        for source, engine in estate.sources.items():
            problems, warnings = check_against_database(shop.config, source, engine, key_id=shop.keyring.active_id)
            assert [str(p) for p in problems] == [], source
            assert [str(w) for w in warnings] == [], source

    # the command says the same, reading the catalog, policy and URLs from the environment
    result = CliRunner().invoke(app, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "agree with each other and with 2 databases" in " ".join(result.output.split())
    assert "0 warnings" in result.output

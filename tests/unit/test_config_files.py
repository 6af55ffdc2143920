"""Reading the configuration files strictly, requests.yaml with the catalog and the policy, and the bounds the
calendar and the control database set (the broken files themselves are cases in tests/config_cases)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cli.app import app
from retention.config import limits
from retention.config.loading import load_config, read_config
from retention.config.periods import MAX_PERIOD_YEARS, Period
from retention.config.problems import ConfigError
from retention.config.requests import RequestSettingsError, load_request_settings, read_request_settings
from retention.config.yamlfile import read_yaml
from retention.rules.calendar import add_period_to
from retention.storage import schema

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
WEBSHOP = ROOT / "tests" / "webshop"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RETENTION_REQUESTS", raising=False)
    for name in ("catalog.yaml", "policy.yaml", "requests.yaml"):
        shutil.copyfile(CONFIG / name, tmp_path / name)
    return tmp_path


def test_the_shipped_and_the_webshop_configurations_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETENTION_REQUESTS", raising=False)
    for where in (CONFIG, WEBSHOP):
        catalog, policy, problems = read_config(where / "catalog.yaml", where / "policy.yaml")
        assert problems == [] and catalog is not None and policy is not None, [str(p) for p in problems]
        settings, found = read_request_settings(catalog, policy, where / "catalog.yaml")
        assert found == [] and settings is not None


def test_yaml_is_read_as_safe_load_reads_it(tmp_path: Path) -> None:
    """Merge keys may repeat a key on purpose; a byte-order mark is not text; anchors and aliases still work."""
    path = tmp_path / "doc.yaml"
    path.write_text("\ufeffbase: &b {x: 1, y: [1, 2]}\nother:\n  <<: *b\n  x: 2\nsame: *b\n", encoding="utf-8")
    assert read_yaml(path) == {
        "base": {"x": 1, "y": [1, 2]},
        "other": {"x": 2, "y": [1, 2]},
        "same": {"x": 1, "y": [1, 2]},
    }


def test_requests_yaml_is_checked_by_the_same_loading_as_catalog_and_policy(folder: Path) -> None:
    text = (folder / "requests.yaml").read_text().replace("recipient: partner", "recipient: partnr")
    (folder / "requests.yaml").write_text(text)
    _, _, problems = read_config(folder / "catalog.yaml", folder / "policy.yaml")
    assert [p.entry for p in problems] == ["recipients[0].recipient"]
    with pytest.raises(ConfigError, match="column 'partnr' is not in the catalog entry"):
        load_config(folder / "catalog.yaml", folder / "policy.yaml")


def test_requests_yaml_problems_are_found_while_the_catalog_is_broken(folder: Path) -> None:
    (folder / "catalog.yaml").write_text("sources: [")
    (folder / "requests.yaml").write_text("answer_within: 1 mnth\n")
    catalog, policy, problems = read_config(folder / "catalog.yaml", folder / "policy.yaml")
    assert catalog is None and policy is not None
    assert {Path(p.file).name for p in problems} == {"catalog.yaml", "requests.yaml"}


def test_request_settings_keep_their_own_error(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(folder / "catalog.yaml", folder / "policy.yaml")
    assert load_request_settings(config).marketing_purposes
    (folder / "requests.yaml").write_text("marketing_purposes: [newsleter]\n")
    with pytest.raises(RequestSettingsError, match="unknown purpose 'newsleter'"):
        load_request_settings(config)
    (folder / "requests.yaml").unlink()
    assert load_request_settings(config).recipients == []  # no file: the defaults
    monkeypatch.setenv("RETENTION_REQUESTS", str(folder / "elsewhere.yaml"))
    with pytest.raises(RequestSettingsError, match=r"elsewhere.yaml: \(file\): file not found"):
        load_request_settings(config)


def test_check_config_reports_a_duplicate_key_without_a_traceback(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (folder / "catalog.yaml").read_text()
    (folder / "catalog.yaml").write_text(text + "locale: en_GB\nlocale: de_DE\n")
    monkeypatch.setenv("RETENTION_CATALOG", str(folder / "catalog.yaml"))
    monkeypatch.setenv("RETENTION_POLICY", str(folder / "policy.yaml"))
    result = CliRunner().invoke(app, ["check-config"])
    assert result.exit_code == 1
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    assert "duplicate key 'locale'" in " ".join(result.output.split())


def test_the_longest_period_is_computed_from_a_late_date() -> None:
    """The bound leaves room: a deadline of the longest period from a date far in the future still computes."""
    tz = ZoneInfo("Europe/Copenhagen")
    start = dt.datetime(2999, 12, 31, 23, tzinfo=dt.UTC)
    for text in (f"{MAX_PERIOD_YEARS} years", f"{MAX_PERIOD_YEARS * 12} months", "52177 weeks", "365242 days"):
        assert add_period_to(start, Period.parse(text), tz).year <= 4000
    with pytest.raises(ValueError, match="reaches beyond"):
        Period.parse(f"{MAX_PERIOD_YEARS + 1} years")


def test_the_control_database_stores_names_of_the_configured_lengths() -> None:
    assert schema.ledger_batches.c.source.type.length == limits.SOURCE_NAME_CHARS  # type: ignore[attr-defined]
    assert schema.ledger_batches.c.table_name.type.length == limits.TABLE_NAME_CHARS  # type: ignore[attr-defined]
    assert schema.ledger_rules.c.purpose.type.length == limits.PURPOSE_NAME_CHARS  # type: ignore[attr-defined]
    assert schema.ledger_entries.c.fields.type.length == limits.LEDGER_FIELDS_CHARS  # type: ignore[attr-defined]

"""`retention check-config` and `retention plan` as an operator runs them, on a small generated SQLite estate.

The CLI is where a data-protection officer first meets the engine: the plan it prints must be the plan the
engine computes, a broken policy must stop it with a message naming the file and the entry, and against
anything but the demo it must refuse to start without a key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import support
from cli.app import app
from retention.config.keys import load_keyring
from retention.config.loading import load_config
from retention.daily.flow import PlanningResult, compute_plan
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from retention.storage.engines import Estate

ANCHOR = dt.date(2025, 6, 1)
DAY = "2025-06-01"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SECRET = hashlib.sha256(b"retention test key for the CLI").digest()


@pytest.fixture(scope="module")
def estate_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A small demo estate in SQLite files; `plan` only reads, so the tests of this module share it."""
    folder = tmp_path_factory.mktemp("cli-estate")
    urls = {source: f"sqlite:///{folder / f'{source}.db'}" for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=120, seed=7, anchor=ANCHOR)
    return urls


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, estate_urls: dict[str, str]) -> Path:
    """A non-demo environment: source URLs, a private control database and var/, a key, a wide terminal."""
    for source, url in estate_urls.items():
        monkeypatch.setenv(f"RETENTION_{source.upper()}_URL", url)
    monkeypatch.setenv("RETENTION_CONTROL_URL", f"sqlite:///{tmp_path / 'control.db'}")
    monkeypatch.setenv("RETENTION_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("RETENTION_CATALOG", str(CONFIG_DIR / "catalog.yaml"))
    monkeypatch.setenv("RETENTION_POLICY", str(CONFIG_DIR / "policy.yaml"))
    monkeypatch.setenv("RETENTION_KEY", "k1:" + base64.b64encode(SECRET).decode())
    monkeypatch.delenv("RETENTION_KEY_FILE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # Rich lays out for the terminal it finds (or COLUMNS, read once at import, which pytest-xdist sets to 80);
    # a wide one here, so that the checks below see whole lines; one test shows what 80 columns do
    terminal_width(monkeypatch, 400)
    return tmp_path


def terminal_width(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    """The CLI's Rich consoles are module globals that fix their width at import; set it for this test only."""
    for console in (support.console, support.err):
        monkeypatch.setattr(console, "_width", columns)


def invoke(*args: str) -> Result:
    """The command line as `retention ARGS` (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, list(args))


def engine_plan(day: dt.date) -> PlanningResult:
    """The plan computed directly, with the same configuration and key the CLI sees."""
    config = load_config(CONFIG_DIR / "catalog.yaml", CONFIG_DIR / "policy.yaml")
    keyring, _ = load_keyring(demo=False)
    estate = Estate.connect(config.catalog)
    try:
        return compute_plan(config, estate, keyring, day)
    finally:
        estate.dispose()


def summary_rows(result: PlanningResult) -> list[tuple[str, str, str, str, int]]:
    summary = result.plan.summary()
    return [(r.source, r.table, r.action, r.purpose, int(r.rows)) for r in summary.itertuples()]


def table_rows(output: str) -> list[tuple[str, ...]]:
    """Body rows of the Rich table (│-separated cells), in printed order."""
    rows = []
    for line in output.splitlines():
        if line.count("│") == 6:
            rows.append(tuple(cell.strip() for cell in line.split("│")[1:-1]))
    return rows


def source_bytes(urls: dict[str, str]) -> dict[str, str]:
    return {s: hashlib.sha256(Path(u.removeprefix("sqlite:///")).read_bytes()).hexdigest() for s, u in urls.items()}


def test_check_config_says_ok(cli_env: Path) -> None:
    """The catalog, the policy and the generated databases agree; the operator is told so."""
    result = invoke("check-config")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")
    assert "3 databases" in result.stdout


def test_plan_prints_the_engines_plan_as_a_table(cli_env: Path, estate_urls: dict[str, str]) -> None:
    """Every (source, table, action, purpose) count of the engine's plan is printed, with the holds; a dry run."""
    before = source_bytes(estate_urls)
    result = invoke("plan", "--as-of", DAY)
    assert result.exit_code == 0, result.output
    expected = engine_plan(ANCHOR)
    rows = summary_rows(expected)
    # the estate plans work in every source, including the table with the longest name
    assert {r[0] for r in rows} == set(DEMO_SOURCES)
    assert "community_memberships" in {r[1] for r in rows}
    printed = table_rows(result.stdout)
    assert printed[:-1] == [(s, t, a, p, str(n)) for s, t, a, p, n in rows]
    assert printed[-1] == ("total", "", "", "", str(sum(n for *_, n in rows)))
    assert f"Retention plan as of {DAY}" in result.stdout
    for (source, table), reasons in expected.plan.held.items():
        for why, n in reasons.items():
            assert f"kept in {source}.{table}: {n} held ({why})" in result.stdout
    # a dry run: the source databases are byte-for-byte what they were
    assert source_bytes(estate_urls) == before


def test_plan_as_json_counts_what_the_engine_plans(cli_env: Path) -> None:
    """The machine-readable plan is the engine's summary, count for count."""
    result = invoke("plan", "--as-of", DAY, "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = engine_plan(ANCHOR)
    counts = [(c["source"], c["table"], c["action"], c["purpose"], c["rows"]) for c in printed["counts"]]
    assert counts == summary_rows(expected)
    assert printed["as_of"] == DAY
    assert printed["total"] == expected.plan.total() == sum(c[-1] for c in counts)
    assert printed["held"] == {f"{s}.{t}": h for (s, t), h in expected.plan.held.items() if h}
    # another day gives another plan: the --as-of option is used
    earlier = json.loads(invoke("plan", "--as-of", "2024-06-01", "--format", "json").stdout)
    assert earlier["as_of"] == "2024-06-01"
    assert 0 < earlier["total"] != printed["total"]


def test_a_broken_policy_stops_plan_naming_file_and_entry(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: a typo in a period stops the command with the file, the entry and the fix."""
    text = (CONFIG_DIR / "policy.yaml").read_text(encoding="utf-8")
    assert text.count("period: 5 years") == 1, "the bookkeeping period is the only five-year period"
    broken = cli_env / "policy.yaml"
    broken.write_text(text.replace("period: 5 years", "period: 5 yaers"), encoding="utf-8")
    monkeypatch.setenv("RETENTION_POLICY", str(broken))
    result = invoke("plan", "--as-of", DAY)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{broken}: purposes.bookkeeping.period: period '5 yaers' has an unknown unit 'yaers'" in result.stderr
    assert "fix: write a whole number and a unit" in result.stderr


def test_check_config_reports_the_policy_the_catalog_and_the_databases_in_one_pass(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in the policy and a column the catalog names but the database lacks: both in one run, not one per
    round of fixing; and a catalog that does not parse is reported with the policy's problems too."""
    policy = (CONFIG_DIR / "policy.yaml").read_text(encoding="utf-8")
    catalog = (CONFIG_DIR / "catalog.yaml").read_text(encoding="utf-8")
    assert catalog.count("record_date: invoice_date") == 1 and catalog.count("interactions: [paid_at]") == 1
    (cli_env / "policy.yaml").write_text(policy.replace("period: 5 years", "period: 5 yaers"), encoding="utf-8")
    broken = catalog.replace("record_date: invoice_date", "record_date: invoice_dat")
    colour = catalog.replace("interactions: [paid_at]", "interactions: [paid_at]\n        colour: blue")
    (cli_env / "catalog.yaml").write_text(broken, encoding="utf-8")
    monkeypatch.setenv("RETENTION_POLICY", str(cli_env / "policy.yaml"))
    monkeypatch.setenv("RETENTION_CATALOG", str(cli_env / "catalog.yaml"))
    result = invoke("check-config")
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "purposes.bookkeeping.period: period '5 yaers' has an unknown unit 'yaers'" in said
    assert "sources.enrolment.tables.invoices.record_date: column 'invoice_dat' does not exist" in said
    assert "2 problems in the configuration" in said

    (cli_env / "catalog.yaml").write_text(colour, encoding="utf-8")
    said = " ".join(invoke("check-config").stderr.split())
    assert "sources.enrolment.tables.payments.colour: unknown field 'colour'" in said
    assert "purposes.bookkeeping.period: period '5 yaers'" in said


def test_without_a_key_plan_refuses_to_start_outside_the_demo(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real data without a key would give unkeyed or throw-away pseudonyms: the engine must not start."""
    monkeypatch.delenv("RETENTION_KEY")
    result = invoke("plan", "--as-of", DAY)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no key configured and the estate is not the demo" in result.stderr
    assert "RETENTION_KEY_FILE" in result.stderr
    # no demo key was made up for a real estate
    assert not (cli_env / "var" / "keys").exists()
    assert not (cli_env / "control.db").exists()


def test_plan_names_every_table_in_full_without_a_terminal(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan printed into a log (cron, CI) must still say which table each count is about."""
    terminal_width(monkeypatch, 80)  # what Rich assumes when there is no terminal at all
    result = invoke("plan", "--as-of", DAY)
    assert result.exit_code == 0, result.output
    expected = {(s, t, a, p) for s, t, a, p, _ in summary_rows(engine_plan(ANCHOR))}
    assert ("elearning", "community_memberships", "delete", "community_media") in expected
    assert {row[:4] for row in table_rows(result.stdout)[:-1]} == expected

"""The one validation pass before anything is written, and no traceback from the `retention` command.

Every command runs the same pass `check-config` prints: a control database that is one of the sources, a URL
that is no URL, a dialect that is not installed, a server that is down or a SQLite file that is missing stop
the command with one message each, and no database file changes. An error nothing foresaw is one line that
names a private log holding where it happened, without the message (which may hold a value from the estate).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
ANCHOR = dt.date(2025, 6, 1)
VALUE = "-".join(["jane", "doe@example.org"])


@pytest.fixture(scope="module")
def estate_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("preflight-estate")
    urls = {source: f"sqlite:///{folder / f'{source}.db'}" for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=30, seed=3, anchor=ANCHOR)
    return urls


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, estate_urls: dict[str, str]) -> Path:
    for source, url in estate_urls.items():
        monkeypatch.setenv(f"RETENTION_{source.upper()}_URL", url)
    monkeypatch.setenv("RETENTION_CONTROL_URL", f"sqlite:///{tmp_path / 'control.db'}")
    monkeypatch.setenv("RETENTION_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("RETENTION_CATALOG", str(CONFIG_DIR / "catalog.yaml"))
    monkeypatch.setenv("RETENTION_POLICY", str(CONFIG_DIR / "policy.yaml"))
    monkeypatch.setenv("RETENTION_KEY", "k1:" + base64.b64encode(b"p" * 32).decode())
    monkeypatch.delenv("RETENTION_KEY_FILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.db*"))}


def _said(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app.app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


BAD_ENVIRONMENTS = [
    pytest.param(
        "RETENTION_CONTROL_URL",
        "{enrolment}",
        "control_url_env: the control database is the enrolment source's database",
        id="control database is a source",
    ),
    pytest.param(
        "RETENTION_NEWSLETTER_URL",
        "not a url at all",
        "sources.newsletter.url_env: source 'newsletter': RETENTION_NEWSLETTER_URL holds no database URL",
        id="no URL",
    ),
    pytest.param(
        "RETENTION_ELEARNING_URL",
        "oracle+cx_oracle://scott@db/orcl",
        "names the database dialect 'oracle+cx_oracle', which is not installed",
        id="dialect not installed",
    ),
    pytest.param(
        "RETENTION_ENROLMENT_URL",
        "postgresql+psycopg://postgres@127.0.0.1:1/test",
        "sources.enrolment: cannot reach the enrolment database",
        id="server down",
    ),
    pytest.param(
        "RETENTION_ENROLMENT_URL",
        "sqlite:///{folder}/missing.db",
        "the SQLite database",
        id="missing SQLite file",
    ),
    pytest.param(
        "RETENTION_EXECUTOR",
        "fast",
        "RETENTION_EXECUTOR: 'fast' is not a valid value fix: give in_process",
        id="unknown executor",
    ),
    pytest.param(
        "RETENTION_LEASE_SECONDS",
        "2m",
        "RETENTION_LEASE_SECONDS: '2m' is not a valid value fix: give a whole number of seconds from 2 to 86400",
        id="lease not a number",
    ),
    pytest.param(
        "RETENTION_BATCH_ROWS",
        "0",
        "RETENTION_BATCH_ROWS: '0' is not a valid value fix: give a whole number of rows",
        id="no rows per batch",
    ),
    pytest.param(
        "RETENTION_OUTPUT_KEEP_DAYS",
        "0",
        "RETENTION_OUTPUT_KEEP_DAYS: '0' is not a valid value fix: give a whole number of days from 1 to 3650",
        id="outputs kept no day",
    ),
    pytest.param(
        "RETENTION_RUN_KEEP_DAYS",
        "90d",
        "RETENTION_RUN_KEEP_DAYS: '90d' is not a valid value fix: give a whole number of days from 0 to 36500",
        id="run history not a number",
    ),
]


@pytest.mark.parametrize(("variable", "value", "expected"), BAD_ENVIRONMENTS)
@pytest.mark.parametrize("command", [("check-config",), ("plan", "--as-of", "2025-06-01"), ("run",)])
def test_every_command_stops_before_writing_on_a_bad_environment(
    env: Path,
    estate_urls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    expected: str,
    command: tuple[str, ...],
) -> None:
    folder = Path(estate_urls["enrolment"].removeprefix("sqlite:///")).parent
    monkeypatch.setenv(variable, value.format(folder=folder, **estate_urls))
    before = _files(folder), _files(env)
    code, said = _said(*command)
    assert code == 1
    assert said.startswith("error: ") and expected in said, said
    assert "Traceback" not in said
    assert (_files(folder), _files(env)) == before  # no control tables in a source, no new file anywhere


def test_an_unforeseen_error_is_one_line_and_a_private_log_without_the_message(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> Path:
        raise ValueError(VALUE)  # a message may hold a value from the estate

    monkeypatch.setattr(cli_app.settings, "catalog_path", broken)
    monkeypatch.setattr(sys, "argv", ["retention", "check-config"])
    with pytest.raises(SystemExit) as exited:
        cli_app.main()
    assert exited.value.code == 1
    said = capsys.readouterr()
    lines = [line for line in said.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unexpected ValueError; the details are in ")
    assert "Traceback" not in said.err + said.out
    log = Path(" ".join(said.err.split()).rsplit(" ", 1)[-1])
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert text.startswith("retention check-config\n") and "ValueError" in text and "broken" in text
    assert VALUE not in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("demo-estate", "--people", "-5"), "--people -5: the demo estate holds from 1 to 5,000,000 people"),
        (("demo-estate", "--people", "100000000000"), "the demo estate holds from 1 to 5,000,000 people"),
        (("demo-estate",), "already holds rows (table customers); pass --replace"),
        (("demo",), "`retention demo` only runs on the demo estate"),
        (("plan", "--as-of", "9999-12-31"), "--as-of 9999-12-31 is outside the days the engine plans for"),
        (("report", "--as-of", "1999-01-01"), "--as-of 1999-01-01 is outside the days the engine plans for"),
        (("run", "--as-of", "2110-01-01"), "--as-of 2110-01-01: the daily job has a partition for each day from"),
        (("backfill", "--from", "2020-01-01", "--to", "2020-01-02"), "--from 2020-01-01: the daily job has a"),
        (("backfill", "--from", "2025-01-03", "--to", "2025-01-02"), "--to 2025-01-02 is before --from 2025-01-03"),
        (("keys", "init", "--file", "{env}"), "is a folder; give the path of the key file to create"),
        (("keys", "rotate", "--file", "{enrolment}"), "the key file is readable by others"),
        (("keys", "rotate", "--file", "{env}/none.json"), "key file not found"),
        (("keys", "rotate", "--file", "{private}"), "not a key file (expected JSON with 'keys' and 'active')"),
    ],
)
def test_every_other_command_refuses_bad_input_in_one_line(
    env: Path, estate_urls: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    folder = Path(estate_urls["enrolment"].removeprefix("sqlite:///")).parent
    enrolment = str(folder / "enrolment.db")
    private = env / "private.db"  # owner-only, but a database, not a key file
    private.write_bytes((folder / "enrolment.db").read_bytes())
    private.chmod(0o600)
    before = _files(folder), _files(env)
    code, said = _said(*(a.format(env=env, enrolment=enrolment, private=private) for a in args))
    assert code == 1
    assert said.startswith("error: ") and expected in said, said
    assert "Traceback" not in said
    assert (_files(folder), _files(env)) == before


@pytest.mark.parametrize("command", [("run",), ("backfill", "--from", "2025-01-01", "--to", "2025-01-02", "--apply")])
def test_without_a_key_a_run_stops_with_the_engines_message(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.delenv("RETENTION_KEY")
    code, said = _said(*command)
    assert code == 1 and said.startswith("error: no key configured and the estate is not the demo"), said
    assert "Traceback" not in said and "dagster" not in said.lower()


def test_a_run_stopped_by_the_guard_prints_the_engines_message_not_dagsters_stack(
    env: Path, estate_urls: dict[str, str]
) -> None:
    """The first run on years of old data touches most of a table: the guard stops it, and the terminal shows
    the guard's message and what to do, not Dagster's log lines and stack trace."""
    folder = Path(estate_urls["enrolment"].removeprefix("sqlite:///")).parent
    before = _files(folder)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "run", "--as-of", ANCHOR.isoformat()],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=600,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "retention_plan: the plan for 2025-06-01 would touch more than" in said
    assert "--confirm-large-plan" in said
    assert "Traceback" not in said and "Stack Trace" not in said and "GuardError" not in said
    assert _files(folder) == before

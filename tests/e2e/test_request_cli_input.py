"""Bad input to `retention request ...` (and `retention replay`) fails closed: exit code 1, one line on stderr
starting with `error:` that names the option and says what is wrong without repeating the identifier, no
traceback, and not one byte of the control database or the sources changed. On a small demo estate in SQLite,
whose control database is the CLI's default kind."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from tests.databases import server_databases
from tests.requests_support import customer_identifiers, demo_estate, rows_of

IDS = "request ids are positive whole numbers up to 2147483647; `retention request list` shows the register"
TOMORROW = (dt.date.today() + dt.timedelta(days=2)).isoformat()
VALID = ["--email", "someone@example.dk"]
IDENTIFIER_OPTIONS = ("--email", "--phone", "--customer-number")

CASES: list[tuple[str, list[str], str]] = [
    # (case, arguments after `retention`, the message expected on the one error line)
    ("email empty", ["request", "erase", "--email", ""], "--email is empty; give the person's e-mail address"),
    ("email spaces", ["request", "access", "--email", "   "], "--email holds only spaces"),
    (
        "email without @",
        ["request", "erase", "--email", "notanemail"],
        "--email is not an e-mail address (it has no @); give the address as the person wrote it, "
        "e.g. name@example.com",
    ),
    ("email two @", ["request", "access", "--email", "anne@@example.dk"], "(it has more than one @)"),
    ("email no local part", ["request", "restrict", "--email", "@example.dk"], "(it has nothing before the @)"),
    ("email no domain", ["request", "object-marketing", "--email", "anne@"], "(it has no domain after the @)"),
    ("email domain without dot", ["request", "unrestrict", "--email", "anne@localhost"], "(its domain has no dot)"),
    ("email with space", ["request", "erase", "--email", "anne hansen@example.dk"], "(it holds a space)"),
    (
        "email in brackets",
        ["request", "erase", "--email", "<anne@example.dk>"],
        '(its part before the @ holds one of ( ) < > [ ] : ; , \\ "); give the address alone',
    ),
    ("email double dot", ["request", "erase", "--email", "anne@example..dk"], "has two dots in a row)"),
    ("email trailing comma", ["request", "erase", "--email", "anne@example.dk,"], "holds a character no domain has"),
    ("email SQL", ["request", "erase", "--email", "x'); DROP TABLE customers; --"], "(it holds a space)"),
    ("email zero-width", ["request", "erase", "--email", "anne\u200b@example.dk"], "(it holds a control or invisible"),
    ("email lone surrogate", ["request", "erase", "--email", "a\udcffb@example.dk"], "(it holds a lone surrogate)"),
    ("email huge", ["request", "erase", "--email", "x" * 70_000], "--email has 70,000 characters; at most 65,536"),
    ("phone empty", ["request", "erase", "--phone", ""], "--phone is empty; give the person's phone number, e.g. +45"),
    ("phone too short", ["request", "erase", "--phone", "+45 1"], "--phone is not a possible phone number in DK (too"),
    ("phone too long", ["request", "access", "--phone", "123456789012"], "phone number in DK (too long)"),
    (
        "phone letters",
        ["request", "access", "--phone", "+45 CALL ME"],
        "--phone is not a phone number (it holds letters)",
    ),
    ("phone SQL", ["request", "erase", "--phone", "12345678;--"], "(it holds characters other than digits, spaces"),
    ("phone country", ["request", "erase", "--phone", "+999 12345678"], "(no country has its country code)"),
    ("phone no digits", ["request", "restrict", "--phone", "+()-"], "--phone is not a phone number (it has no digits)"),
    ("customer number empty", ["request", "erase", "--customer-number", ""], "--customer-number is empty"),
    (
        "customer number spaces",
        ["request", "erase", "--customer-number", " \t "],
        "--customer-number holds only spaces",
    ),
    ("no identifier", ["request", "erase"], "give at least one identifier: --email, --phone or --customer-number"),
    ("one good one bad", ["request", "erase", *VALID, "--phone", "1"], "--phone is not a possible phone number"),
    ("received year 1", ["request", "erase", *VALID, "--received", "0001-01-01"], "--received 0001-01-01 is before"),
    (
        "received year 9999",
        ["request", "erase", *VALID, "--received", "9999-12-31"],
        "--received 9999-12-31 is in the future; give the day the request reached us, today at the latest",
    ),
    ("received 1999", ["request", "erase", *VALID, "--received", "1999-12-31T23:59"], "1999-12-31 23:59 is before"),
    ("received future", ["request", "access", *VALID, "--received", TOMORROW], f"--received {TOMORROW} is in the"),
    ("received future now", ["request", "erase", *VALID, "--now", "--received", "9999-12-31"], "is in the future"),
    ("show huge id", ["request", "show", "99999999999999999999"], IDS),
    ("run huge id", ["request", "run", "99999999999999999999"], IDS),
    ("show 64-bit overflow", ["request", "show", "9223372036854775808"], IDS),
    ("show past 32 bits", ["request", "show", "2147483648"], IDS),
    ("show -1", ["request", "show", "-1"], IDS),
    ("show -1 json", ["request", "show", "-1", "--json"], IDS),
    ("run -5", ["request", "run", "-5"], IDS),
    ("show 0", ["request", "show", "0"], IDS),
    ("show text", ["request", "show", "abc"], IDS),
    ("run fraction", ["request", "run", "1.5"], IDS),
    ("show largest id", ["request", "show", "2147483647"], "there is no request #2147483647;"),
    ("run missing id", ["request", "run", "999"], "there is no request #999;"),
    ("replay year 1", ["replay", "--source", "enrolment", "--since", "0001-01-01"], "--since 0001-01-01 is before"),
    ("replay future", ["replay", "--source", "enrolment", "--since", "9999-12-31"], "--since 9999-12-31 is in the"),
]


class Estate:
    def __init__(self, folder: Path, good: dict[str, str]) -> None:
        self.folder = folder
        self.good = good

    def digests(self) -> dict[str, str]:
        """Every database file (and SQLite's write-ahead log) by name; a new file would show as well. The
        shared-memory index is left out: a mere read updates it."""
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.folder.iterdir())
            if p.is_file() and not p.name.endswith("-shm")
        }


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    """A demo estate with one request registered (so the register exists), the environment pointed at it."""
    tmp_path = tmp_path_factory.mktemp("input")
    with pytest.MonkeyPatch.context() as monkeypatch, server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=12, seed=29)
        view = demo.view()
        customers = sorted(set(view.tagged[("enrolment", "customers")].frame["subject"]))
        good = customer_identifiers(demo.urls["enrolment"], rows_of(view, {customers[0]})[("enrolment", "customers")])
        registered = CliRunner().invoke(app, ["request", "access", "--email", good["email"]])
        assert registered.exit_code == 0 and "registered request #1" in registered.output, registered.output
        assert sorted(p.suffix for p in tmp_path.iterdir() if p.suffix == ".db") == [".db"] * 4
        yield Estate(tmp_path, good)


def refused(result: Result) -> str:
    """The one error line of a refused command, after checking that it is refused cleanly."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == "", "nothing on stdout"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(("case", "args", "message"), CASES, ids=[c for c, _, _ in CASES])
def test_bad_input_is_refused_in_one_line_and_changes_nothing(
    estate: Estate, case: str, args: list[str], message: str
) -> None:
    before = estate.digests()
    line = refused(CliRunner().invoke(app, args))
    assert message in line, line
    for option, given in itertools.pairwise(args):
        if option in IDENTIFIER_OPTIONS and len(given.strip()) >= 4:
            assert given.strip() not in line, f"{case}: the identifier is repeated"
    assert estate.digests() == before, f"{case}: a database file changed"


def test_good_input_still_registers(estate: Estate) -> None:
    """The checks refuse what no one could mean, not the formats people and the demo estate use."""
    runner = CliRunner()
    before = estate.digests()
    for args in (
        ["--email", f"  {estate.good['email'].upper()} "],
        ["--phone", "0045 1234-5678"],
        ["--phone", "(+45) 12 34 56 78", "--customer-number", " c 100 23 "],
        ["--email", "someone@example.dk", "--received", "2000-01-01"],
    ):
        result = runner.invoke(app, ["request", "restrict", *args])
        assert result.exit_code == 0 and "registered request #" in result.output, (args, result.output)
    assert estate.digests() != before, "the digests see a registration"
    shown = runner.invoke(app, ["request", "show", " 0001 "])
    assert shown.exit_code == 0 and "request #1:" in shown.output, shown.output


@pytest.mark.parametrize("url", ["postgresql+psycopg://nobody@127.0.0.1:1/none", "sqlite:///{folder}"])
def test_an_unusable_control_database_is_one_line(estate: Estate, url: str) -> None:
    url = url.format(folder=estate.folder)  # a server nobody listens on; a folder where the file should be
    for args in (["request", "list"], ["request", "show", "1"], ["request", "erase", *VALID]):
        result = CliRunner().invoke(app, args, env={"RETENTION_CONTROL_URL": url})
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.stderr.startswith("error: "), result.stderr

"""The support-staff commands: register, carry out at once, list with deadlines (overdue marked), show the
receipt; the terminal never shows the identifiers given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.databases import server_databases
from tests.requests_support import customer_identifiers, demo_estate, rows_of


def test_request_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=30, seed=13)
        view = demo.view()
        customers = sorted(set(view.tagged[("enrolment", "customers")].frame["subject"]))
        first = customer_identifiers(demo.urls["enrolment"], rows_of(view, {customers[0]})[("enrolment", "customers")])
        second = customer_identifiers(demo.urls["enrolment"], rows_of(view, {customers[1]})[("enrolment", "customers")])
        runner = CliRunner()

        erased = runner.invoke(app, ["request", "erase", "--customer-number", first["customer_number"], "--now"])
        assert erased.exit_code == 0, erased.output
        assert "registered request #1" in erased.output
        assert "Receipt for request #1: erasure (Art 17)" in erased.output
        assert "verification: passed" in erased.output and "request #1 done" in erased.output

        queued = runner.invoke(app, ["request", "access", "--email", second["email"]])
        assert queued.exit_code == 0 and "registered request #2" in queued.output
        late = runner.invoke(app, ["request", "restrict", "--email", second["email"], "--received", "2026-01-02"])
        assert late.exit_code == 0 and "registered request #3" in late.output

        listed = runner.invoke(app, ["request", "list"], env={"COLUMNS": "200"})
        assert listed.exit_code == 0, listed.output
        assert "answered" in listed.output and "OVERDUE" in listed.output and "requests are overdue" in listed.output
        for value in (*first.values(), *second.values()):
            assert value.strip() not in listed.output

        ran = runner.invoke(app, ["request", "run", "2"])
        assert ran.exit_code == 0, ran.output
        assert "An export of" in " ".join(ran.output.split())
        shown = runner.invoke(app, ["request", "show", "1", "--json"])
        receipt = json.loads(shown.output)
        assert receipt["kind"] == "erasure" and receipt["found"] is True
        text = runner.invoke(app, ["request", "show", "2"])
        assert text.exit_code == 0 and "Receipt for request #2" in text.output
        assert second["email"].strip() not in text.output

        again = runner.invoke(app, ["request", "run", "1"])
        assert again.exit_code == 1 and "done" in again.output
        missing = runner.invoke(app, ["request", "show", "99"])
        assert missing.exit_code == 1 and "no request #99" in missing.output

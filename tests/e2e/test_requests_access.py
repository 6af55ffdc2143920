"""Access and portability: the export holds every row of the person and nobody else's, each with its purposes,
legal basis and how long it is kept, is owner-only, and is removed after the configured number of days."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from retention.config.requests import RequestSettings
from retention.requests.access import exports_dir, plain_value, purge_exports
from retention.requests.kinds import RequestKind, RequestStatus
from tests.databases import server_databases
from tests.requests_support import (
    ANCHOR,
    column_names,
    customer_identifiers,
    demo_estate,
    estate_contents,
    rows_of,
    run_retention_steps,
)


def test_access_export_holds_every_row_of_the_person_and_nobody_elses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=50, seed=17)
        view = demo.view()
        everywhere = view.index.subjects.loc[view.index.subjects["sources"] == 3, "subject"]
        customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
        person = next(s for s in sorted(everywhere) if s in customers)
        mine = rows_of(view, {person})
        phone = customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")]).get("phone")
        given = (
            {"phone": phone}
            if phone
            else customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")])
        )

        outcome = demo.carry_out(demo.register(RequestKind.ACCESS, **given))
        assert outcome.status is RequestStatus.DONE and outcome.receipt is not None
        assert outcome.receipt.export is not None
        name = outcome.receipt.export.file
        assert name.startswith("exports/request-") and str(tmp_path) not in outcome.receipt.to_json()
        path = exports_dir() / Path(name).name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(exports_dir().stat().st_mode) == 0o700

        content = estate_contents(demo.urls)
        columns = column_names(demo.urls)
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read("export.json"))
            names = set(archive.namelist())
            csvs = {n: list(csv.DictReader(io.StringIO(archive.read(n).decode()))) for n in names if n.endswith(".csv")}
            text = b"".join(archive.read(n) for n in names).decode()
        exported = {tuple(t.split(".")): rows["rows"] for t, rows in document["tables"].items()}
        assert set(exported) == set(mine)
        for tid, rows in exported.items():
            entry = demo.config.catalog.table(*tid)
            pks = {r["data"][entry.pk] for r in rows}
            assert pks == mine[tid], f"{tid}: exactly the person's rows"
            assert len(csvs[f"{tid[0]}.{tid[1]}.csv"]) == len(rows)
            for r in rows:
                db_row = dict(zip(columns[tid], content[tid][r["data"][entry.pk]], strict=True))
                for column, value in db_row.items():
                    spec = entry.columns.get(column)
                    if spec is not None and spec.category.value == "credential":
                        assert r["data"][column] in (None, "(withheld for security)")
                    else:
                        assert r["data"][column] == plain_value(value), f"{tid}.{column}"
                assert r["purposes"] == entry.purposes
                assert set(r["legal_basis"]) == set(entry.purposes) == set(r["kept_until"])
        shares = mine.get(("enrolment", "partner_shares"), set())
        assert sum(r["records"] for r in document["recipients"]) == len(shares)
        assert set(document["retention_schedule"]) == set(demo.config.policy.purposes)
        # nobody else's: no other person's e-mail address is anywhere in the archive
        others = view.index.subjects.loc[view.index.subjects["subject"] != person, "subject"]
        other_rows = rows_of(view, set(others))
        for tid, column in (
            (("enrolment", "customers"), "email"),
            (("newsletter", "subscribers"), "email"),
            (("elearning", "accounts"), "login_email"),
        ):
            i = columns[tid].index(column)
            for pk in other_rows.get(tid, ()):
                value = content[tid][pk][i]
                if value and value.strip().lower() not in {
                    str(r["data"][column]).strip().lower() for r in exported.get(tid, [])
                }:
                    assert value not in text, f"another person's {column} is in the export"

        # exports are removed after the configured number of days
        os.utime(path, (path.stat().st_atime - 31 * 86_400, path.stat().st_mtime - 31 * 86_400))
        fresh = demo.carry_out(demo.register(RequestKind.ACCESS, **given))  # every request run purges
        assert fresh.receipt is not None and fresh.receipt.export is not None
        fresh_path = exports_dir() / Path(fresh.receipt.export.file).name
        assert not path.exists() and fresh_path.exists()
        assert purge_exports(RequestSettings(export_keep_days=30)) == 0
        os.utime(fresh_path, (fresh_path.stat().st_atime - 8 * 86_400, fresh_path.stat().st_mtime - 8 * 86_400))
        assert purge_exports(RequestSettings(export_keep_days=7)) == 1
        assert not fresh_path.exists()


def test_the_daily_run_removes_expired_exports_and_keeps_var_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request need run for an export to go: the daily job removes those past `export_keep_days`."""
    with server_databases("sqlite", tmp_path) as dbs:
        demo = demo_estate(monkeypatch, dbs, tmp_path, people=30, seed=19)
        outcome = demo.carry_out(demo.register(RequestKind.ACCESS, email="nobody@example.dk"))
        assert outcome.status is RequestStatus.DONE
        folder = exports_dir()
        folder.mkdir(parents=True, exist_ok=True)  # no export was written: nobody was found
        old, fresh = folder / "request-1-20260101T000000.zip", folder / "request-2-20260301T000000.zip"
        for path in (old, fresh):
            path.write_bytes(b"zip")
        os.utime(old, (old.stat().st_atime - 31 * 86_400, old.stat().st_mtime - 31 * 86_400))
        result = run_retention_steps(ANCHOR, confirm_large_plan=True)
        assert result.success
        assert not old.exists() and fresh.exists()
        var = tmp_path / "var"
        for path in (var, var / "dagster"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path

"""Tables keyed by several columns (order lines, a join table) are planned, applied, recorded, verified and
replayed like any other, on SQLite, PostgreSQL and MariaDB, and a composite-keyed table cannot be a parent."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from retention.apply.applier import SourceApplier
from retention.apply.verification import verify
from retention.config.database import check_against_database
from retention.config.loading import load_config
from retention.config.problems import ConfigError
from retention.daily.flow import compute_plan
from retention.storage.engines import Estate, make_engine
from retention.storage.schema import ledger
from tests.databases import ServerDatabases
from tests.mini_estate import KEYRING, purpose_entry

DAY = dt.date(2026, 3, 1)
OLD, RECENT = dt.datetime(2020, 2, 1, 12), dt.datetime(2026, 1, 10, 12)

pytestmark = pytest.mark.servers


def _metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "people",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(200)),
        sa.Column("last_seen", sa.DateTime),
    )
    sa.Table(
        "lines",
        md,
        sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("gift_message", sa.String(200)),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "tags",
        md,
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), primary_key=True, autoincrement=False),
        sa.Column("tag", sa.String(20), primary_key=True),
        sa.Column("note", sa.String(200)),
        sa.Column("tagged_at", sa.DateTime, nullable=False),
    )
    return md


def _catalog(url: str, control_url: str) -> dict[str, Any]:
    child = {"subject": {"parent": "people", "foreign_key": "person_id"}}
    return {
        "control_url_env": "PAIRS_CONTROL_URL_UNSET",
        "control_default_url": control_url,
        "sources": {
            "crm": {
                "url_env": "PAIRS_CRM_URL_UNSET",
                "default_url": url,
                "tables": {
                    "people": {
                        "primary_key": ["id"],
                        "subject": {"identifiers": {"email": "email"}},
                        "interactions": ["last_seen"],
                        "record_date": "last_seen",
                        "purposes": ["service"],
                        "columns": {"email": {"category": "email", "anonymizer": "surrogate_email"}},
                    },
                    "lines": {
                        **child,
                        "primary_key": ["order_id", "line_no"],
                        "record_date": "added_at",
                        "purposes": ["messages"],
                        "columns": {"gift_message": {"category": "free_text", "anonymizer": "clear"}},
                    },
                    "tags": {
                        **child,
                        "primary_key": ["person_id", "tag"],
                        "record_date": "tagged_at",
                        "purposes": ["tagging"],
                        "columns": {"note": {"category": "free_text", "anonymizer": "clear"}},
                    },
                },
            }
        },
    }


POLICY = {
    "financial_year_end": "12-31",
    "business_timezone": "Europe/Copenhagen",
    "guard": {"max_share": 1.0, "min_rows": 0},
    "bookkeeping_hold": {"purpose": "service", "tables": []},
    "purposes": {
        "service": purpose_entry("last_interaction", "10 years", "pseudonymise"),
        "messages": purpose_entry("record_date", "1 year", "delete"),
        "tagging": purpose_entry("record_date", "1 year", "clear"),
    },
}


def _write(folder: Path, catalog: dict[str, Any]) -> tuple[Path, Path]:
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    (folder / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    return folder / "catalog.yaml", folder / "policy.yaml"


def test_composite_keys_are_planned_applied_recorded_and_verified(databases: ServerDatabases, tmp_path: Path) -> None:
    url, control_url = databases.new_url("pairs"), databases.new_url("pairsctl")
    engine = make_engine(url)
    md = _metadata()
    md.create_all(engine)
    people = [{"id": i, "email": f"p{i}@example.org", "last_seen": RECENT} for i in (1, 2)]
    # the same line numbers under different orders, and the same tag on different people: a key part alone
    # matches rows of others, so only the whole key may pick a row
    lines = [
        {"order_id": o, "line_no": n, "person_id": o % 2 + 1, "gift_message": f"m{o}.{n}", "added_at": when}
        for o, when in ((10, OLD), (11, RECENT), (12, OLD))
        for n in (1, 2)
    ]
    tags = [
        {"person_id": p, "tag": t, "note": f"n{p}{t}", "tagged_at": OLD if (p, t) == (1, "vip") else RECENT}
        for p in (1, 2)
        for t in ("vip", "new")
    ]
    with engine.begin() as conn:
        conn.execute(md.tables["people"].insert(), people)
        conn.execute(md.tables["lines"].insert(), lines)
        conn.execute(md.tables["tags"].insert(), tags)
    config = load_config(*_write(tmp_path, _catalog(url, control_url)))
    problems, _ = check_against_database(config, "crm", engine)
    assert problems == []

    estate = Estate.connect(config.catalog)
    try:
        plan = compute_plan(config, estate, KEYRING, DAY).plan
        assert estate.control is not None
        applier = SourceApplier(config, "crm", estate.sources["crm"], estate.control, KEYRING, run_id="r", as_of=DAY)
        result = applier.apply(plan)
        assert verify(applier, result) == []
        with estate.control.connect() as conn:
            recorded = conn.execute(sa.select(ledger.c.table_name, ledger.c.pk)).all()
    finally:
        estate.dispose()

    with engine.connect() as conn:
        left = sorted(
            tuple(r) for r in conn.execute(sa.select(md.tables["lines"].c.order_id, md.tables["lines"].c.line_no))
        )
        notes = dict(
            ((p, t), n) for p, t, n in conn.execute(sa.select(*md.tables["tags"].c["person_id", "tag", "note"]))
        )
        emails = sorted(conn.execute(sa.select(md.tables["people"].c.email)).scalars())
    engine.dispose()
    assert left == [(11, 1), (11, 2)]
    assert notes == {(1, "vip"): None, (1, "new"): "n1new", (2, "vip"): "n2vip", (2, "new"): "n2new"}
    assert emails == ["p1@example.org", "p2@example.org"]
    assert sorted((t, json.loads(pk)) for t, pk in recorded) == [
        ("lines", [10, 1]),
        ("lines", [10, 2]),
        ("lines", [12, 1]),
        ("lines", [12, 2]),
        ("tags", [1, "vip"]),
    ]


def test_a_composite_keyed_table_cannot_be_a_parent(tmp_path: Path) -> None:
    catalog = _catalog("sqlite:///unused.db", "sqlite:///unused-control.db")
    tables = catalog["sources"]["crm"]["tables"]
    tables["replies"] = {
        "primary_key": ["id"],
        "subject": {"parent": "lines", "foreign_key": "line_id"},
        "record_date": "at",
        "purposes": ["messages"],
    }
    with pytest.raises(ConfigError) as refused:
        load_config(*_write(tmp_path, catalog))
    assert "sources.crm.tables.replies.subject.parent" in str(refused.value)
    assert "composite primary key" in str(refused.value)

"""A small hand-built estate ("shop") with known answers, on any backend, for table-driven planning tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
import yaml

from anonymizers.keys import Key
from retention.config.keys import Keyring
from retention.config.loading import EstateConfig, load_config
from retention.daily.flow import PlanningResult, compute_plan
from retention.storage.engines import Estate, make_engine

TEST_KEY = Key("k1", b"0123456789abcdef0123456789abcdef")
KEYRING = Keyring({"k1": TEST_KEY}, "k1", "k1", origin="test")


def shop_metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "people",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(200)),
        sa.Column("phone", sa.String(40)),
        sa.Column("password", sa.String(100)),
        sa.Column("note", sa.String(200)),
        sa.Column("created_at", sa.DateTime),
        sa.Column("last_seen", sa.DateTime),
    )
    sa.Table(
        "orders",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("invoice_date", sa.Date),
        sa.Column("billing_name", sa.String(100)),
        sa.Column("amount", sa.Integer),
    )
    sa.Table(
        "subs",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(200)),
        sa.Column("phone", sa.String(40)),
        sa.Column("consent_at", sa.DateTime),
        sa.Column("unsubscribed_at", sa.DateTime),
        sa.Column("course_end", sa.Date),
    )
    return md


def shop_catalog(url: str, control_url: str, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "control_url_env": "SHOP_CONTROL_URL_UNSET",
        "control_default_url": control_url,
        "sources": {
            "crm": {
                "url_env": "SHOP_CRM_URL_UNSET",
                "default_url": url,
                "tables": {
                    "people": {
                        "primary_key": ["id"],
                        "subject": {"identifiers": {"email": "email", "phone": "phone"}},
                        "interactions": ["created_at", "last_seen"],
                        "record_date": "created_at",
                        "events": {"last_seen": "last_seen"},
                        "purposes": ["service", "security"],
                        "columns": {
                            "email": {"category": "email", "anonymizer": "token", "purposes": ["service"]},
                            "phone": {"category": "phone", "anonymizer": "token", "purposes": ["service"]},
                            "password": {"category": "credential", "anonymizer": "clear", "purposes": ["security"]},
                            "note": {"category": "free_text", "anonymizer": "clear"},
                        },
                    },
                    "orders": {
                        "primary_key": ["id"],
                        "subject": {"parent": "people", "foreign_key": "person_id"},
                        "record_date": "invoice_date",
                        "purposes": ["bookkeeping"],
                        "columns": {"billing_name": {"category": "name", "anonymizer": "clear"}},
                        "not_personal": ["amount"],
                    },
                    "subs": {
                        "primary_key": ["id"],
                        "subject": {"identifiers": {"email": "email", "phone": "phone"}},
                        "interactions": ["consent_at"],
                        "record_date": "consent_at",
                        "events": {"unsubscribed": "unsubscribed_at", "course_end": "course_end"},
                        "purposes": ["newsletter", "special"],
                        "columns": {
                            "email": {"category": "email", "anonymizer": "token", "purposes": ["newsletter"]},
                            "phone": {"category": "phone", "anonymizer": "clear", "purposes": ["special"]},
                        },
                    },
                },
            }
        },
    }


def shop_policy(**overrides: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "financial_year_end": "12-31",
        "business_timezone": "Europe/Copenhagen",
        "guard": {"max_share": 1.0, "min_rows": 0},
        "bookkeeping_hold": {"purpose": "bookkeeping", "tables": ["crm.orders"]},
        "purposes": {
            "service": purpose_entry("last_interaction", "3 years", "delete"),
            "security": {**purpose_entry("event", "6 months", "clear"), "event": "last_seen"},
            "bookkeeping": purpose_entry("end_of_financial_year", "5 years", "pseudonymise"),
            "newsletter": {**purpose_entry("event", "0 days", "delete"), "event": "unsubscribed"},
            "special": {**purpose_entry("event", "0 days", "clear"), "event": "course_end"},
        },
    }
    for key, value in overrides.items():
        if key.startswith("purposes."):
            policy["purposes"][key.split(".", 1)[1]].update(value)
        else:
            policy[key] = value
    return policy


def purpose_entry(clock: str, period: str, action: str) -> dict[str, str]:
    return {
        "data": "test data",
        "legal_basis": "test basis",
        "clock": clock,
        "period": period,
        "action": action,
        "reason": "test",
    }


class Shop:
    """A built mini estate: `plan(day)` runs the real snapshot, subject index, tagging and planning."""

    def __init__(self, folder: Path, url: str, control_url: str, policy: Mapping[str, Any], **catalog: Any) -> None:
        (folder / "catalog.yaml").write_text(yaml.safe_dump(shop_catalog(url, control_url, **catalog)))
        (folder / "policy.yaml").write_text(yaml.safe_dump(dict(policy)))
        self.config: EstateConfig = load_config(folder / "catalog.yaml", folder / "policy.yaml")
        self.url = url
        engine = make_engine(url)
        shop_metadata().create_all(engine)
        engine.dispose()

    def insert(self, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        engine = make_engine(self.url)
        md = shop_metadata()
        with engine.begin() as conn:
            for table in ("people", "orders", "subs"):
                if rows.get(table):
                    conn.execute(md.tables[table].insert(), [_full(md.tables[table], r) for r in rows[table]])
        engine.dispose()

    def result(self, day: dt.date) -> PlanningResult:
        estate = Estate.connect(self.config.catalog)
        try:
            return compute_plan(self.config, estate, KEYRING, day)
        finally:
            estate.dispose()

    def plan(self, day: dt.date) -> set[tuple[str, int, str, str, tuple[str, ...]]]:
        """(table, pk, action, purpose, fields) of every entry."""
        return entries_of(self.result(day).plan)


def entries_of(plan: Any) -> set[tuple[str, int, str, str, tuple[str, ...]]]:
    out = set()
    for (_, table), frame in plan.entries.items():
        for row in frame.itertuples():
            out.add((table, int(row.pk), row.action, row.purpose, tuple(row.fields)))
    return out


def _full(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    return {c.name: row.get(c.name) for c in table.columns}


def ts(text: str) -> dt.datetime:
    return pd.Timestamp(text).to_pydatetime()

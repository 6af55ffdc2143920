"""Schema shapes of estates nobody here wrote, expressed by catalog alone: dates stored as text, children that
take their parent's record date, tables that hold no personal data, phones of other countries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from retention.config.catalog import IdentifierKind
from retention.config.database import check_against_database
from retention.config.loading import EstateConfig, load_config
from retention.config.problems import ConfigError
from retention.daily.flow import PlanningResult, compute_plan
from retention.requests.register import tokens_of
from retention.rules.identity import normalise
from retention.storage.engines import Estate, make_engine
from tests.mini_estate import KEYRING, TEST_KEY, purpose_entry

D = dt.date.fromisoformat
SEEN_FORMAT = "%d.%m.%Y %H:%M"


def _metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "people",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(200)),
        sa.Column("phone", sa.String(40)),
        sa.Column("seen", sa.String(16)),
    )
    sa.Table(
        "notes",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("body", sa.String(200)),
    )
    sa.Table("products", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(40)))
    return md


def _catalog(url: str, control_url: str, **people: Any) -> dict[str, Any]:
    return {
        "locale": "en_GB",
        "control_url_env": "SHAPES_CONTROL_URL_UNSET",
        "control_default_url": control_url,
        "sources": {
            "crm": {
                "url_env": "SHAPES_CRM_URL_UNSET",
                "default_url": url,
                "not_personal_tables": ["products"],
                "tables": {
                    "people": {
                        "primary_key": ["id"],
                        "subject": {"identifiers": {"email": "email", "phone": "phone"}},
                        "interactions": ["seen"],
                        "record_date": "seen",
                        "date_formats": {"seen": SEEN_FORMAT},
                        "purposes": ["service"],
                        "columns": {
                            "email": {"category": "email", "anonymizer": "surrogate_email"},
                            "phone": {"category": "phone", "anonymizer": "surrogate_phone"},
                        },
                        **people,
                    },
                    "notes": {
                        "primary_key": ["id"],
                        "subject": {"parent": "people", "foreign_key": "person_id"},
                        "inherit_record_date": True,
                        "purposes": ["notes"],
                        "columns": {"body": {"category": "free_text", "anonymizer": "clear"}},
                    },
                },
            }
        },
    }


POLICY = {
    "financial_year_end": "12-31",
    "business_timezone": "Europe/London",
    "guard": {"max_share": 1.0, "min_rows": 0},
    "bookkeeping_hold": {"purpose": "service", "tables": []},
    "purposes": {
        "service": purpose_entry("last_interaction", "3 years", "pseudonymise"),
        "notes": purpose_entry("record_date", "1 year", "delete"),
    },
}


def _config(folder: Path, catalog: dict[str, Any]) -> EstateConfig:
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    (folder / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    return load_config(folder / "catalog.yaml", folder / "policy.yaml")


@pytest.fixture
def estate(tmp_path: Path) -> tuple[EstateConfig, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_engine(url)
    md = _metadata()
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            md.tables["people"].insert(),
            [
                {"id": 1, "email": "a@example.co.uk", "phone": "07700 900123", "seen": "01.02.2020 10:00"},
                {"id": 2, "email": "b@example.co.uk", "phone": None, "seen": "31.02.2020 10:00"},  # no such day
                {"id": 3, "email": "c@example.co.uk", "phone": "+44 7700 900123", "seen": " 15.06.2024 09:30 "},
            ],
        )
        conn.execute(md.tables["notes"].insert(), [{"id": i, "person_id": i, "body": "x"} for i in (1, 2, 3)])
    return _config(tmp_path, _catalog(url, f"sqlite:///{tmp_path / 'control.db'}")), engine


def _plan(config: EstateConfig, day: dt.date) -> PlanningResult:
    estate = Estate.connect(config.catalog)
    try:
        return compute_plan(config, estate, KEYRING, day)
    finally:
        estate.dispose()


def _entries(result: PlanningResult) -> set[tuple[str, int, str]]:
    return {
        (t, int(pk), a) for (_, t), f in result.plan.entries.items() for pk, a in zip(f["pk"], f["action"], strict=True)
    }


def test_text_dates_are_read_in_their_format_and_children_inherit_the_record_date(estate) -> None:
    config, _ = estate
    # the note is due a year after its person's record date (1 February 2020, local time)
    assert _entries(_plan(config, D("2021-01-31"))) == set()
    assert _entries(_plan(config, D("2021-02-01"))) == {("notes", 1, "delete")}
    # three years after the last interaction the person is due; the one seen in 2024 is not
    assert ("people", 1, "pseudonymise") not in _entries(_plan(config, D("2023-01-31")))
    later = _plan(config, D("2023-02-01"))
    assert {("people", 1, "pseudonymise"), ("notes", 1, "delete")} <= _entries(later)
    assert not {e for e in _entries(later) if e[1] == 3}
    # a text that is no date gives no date: the row and its child are kept and reported, never guessed
    assert not {e for e in _entries(_plan(config, D("2040-01-01"))) if e[1] == 2}
    assert later.plan.undated[("crm", "people")] == {"service": 1}
    assert later.plan.undated[("crm", "notes")] == {"notes": 1}


def test_check_config_accepts_text_dates_with_a_format_and_tables_declared_not_personal(estate, tmp_path) -> None:
    config, engine = estate
    problems, warnings = check_against_database(config, "crm", engine)
    assert problems == [] and warnings == []
    url = str(engine.url)
    plain = _catalog(url, "sqlite://", date_formats={})
    del plain["sources"]["crm"]["not_personal_tables"]
    folder = tmp_path / "plain"
    folder.mkdir()
    problems, warnings = check_against_database(_config(folder, plain), "crm", engine)
    assert len(problems) == 2, problems  # interactions[0] and record_date name a text column without a format
    assert all("date_formats: {seen: '%Y-%m-%d'}" in p.fix for p in problems)
    assert [w.message for w in warnings] == ["table 'products' in the database is not in the catalog"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"date_formats": {"email": "%Y-%m-%d"}}, "date_formats names 'email', which is not one of the table's"),
        ({"date_formats": {"seen": "%Y"}}, "'%Y' is not a date format that reads back what it writes"),
        ({"inherit_record_date": True}, "needs 'subject: {parent: ..., foreign_key: ...}'"),
    ],
)
def test_date_shapes_that_cannot_work_are_refused_at_load(tmp_path: Path, change: dict, said: str) -> None:
    catalog = _catalog("sqlite://", "sqlite://")
    people = catalog["sources"]["crm"]["tables"]["people"]
    people.update(change)
    if change.get("inherit_record_date"):
        del people["record_date"]
    with pytest.raises(ConfigError) as refused:
        _config(tmp_path, catalog)
    assert said in " ".join(str(refused.value).split())


def test_a_table_both_personal_and_not_is_refused(tmp_path: Path) -> None:
    catalog = _catalog("sqlite://", "sqlite://")
    catalog["sources"]["crm"]["not_personal_tables"] = ["notes"]
    with pytest.raises(ConfigError, match="notes: listed under both 'tables' and 'not_personal_tables'"):
        _config(tmp_path, catalog)


def test_a_phone_without_its_country_code_is_read_in_the_sources_country(estate) -> None:
    """A British estate: '07700 900123' and '+44 7700 900123' are one number, and a request's phone finds it."""
    config, _ = estate
    assert config.catalog.regions() == ["GB"]
    assert normalise(IdentifierKind.PHONE, "07700 900123", "GB") == "+447700900123"
    assert normalise(IdentifierKind.PHONE, "07700 900123") != "+447700900123"  # read as Danish it is not
    index = _plan(config, D("2021-01-01")).index
    # people 1 and 3 wrote the same number two ways: one token, which two e-mails share, so it joins nobody
    assert index.subjects["subject"].nunique() == 3
    assert index.ambiguous == set(tokens_of(TEST_KEY, {IdentifierKind.PHONE: "07700900123"}, ["GB"]))
    assert index.ambiguous != set(tokens_of(TEST_KEY, {IdentifierKind.PHONE: "07700900123"}, ["DK"]))


def test_a_boolean_reflected_from_mariadb_is_a_boolean() -> None:
    """MariaDB stores BOOLEAN as TINYINT(1): clearing it to false must be allowed there as everywhere else."""
    from sqlalchemy.dialects import mysql

    from retention.config.database import column_kind

    assert column_kind(mysql.TINYINT(display_width=1)) == "boolean"
    assert column_kind(mysql.TINYINT(display_width=4)) == "integer"
    assert column_kind(sa.Boolean()) == "boolean"

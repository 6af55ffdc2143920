"""The Art 15(1) items of an access export beyond the records: the controller and where to send requests, the
person's rights, the right to complain to the authority, where data not collected from the person came from,
and automated decisions; in the policy's language, Danish or English; and the compliance report naming the
controller."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from retention.config.loading import load_config
from retention.config.policy import Language, Policy
from retention.reporting.model import gather_report
from retention.reporting.render import render_markdown
from retention.requests.access import exports_dir
from retention.requests.kinds import RequestKind
from retention.requests.texts import RIGHTS, export_readme
from tests.databases import ServerDatabases
from tests.requests_support import CATALOG, POLICY, DemoEstate, customer_identifiers, demo_estate, rows_of

ENROLMENTS = "enrolment.enrolments"


def export_of(demo: DemoEstate) -> tuple[dict[str, object], str]:
    """An access export of a customer with enrolments: its JSON and its README."""
    view = demo.view()
    customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
    enrolled = set(view.tagged[("enrolment", "enrolments")].frame["subject"])
    person = min(customers & enrolled)
    mine = rows_of(view, {person})
    email = customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")])["email"]
    outcome = demo.carry_out(demo.register(RequestKind.ACCESS, email=email))
    assert outcome.receipt is not None and outcome.receipt.export is not None
    with zipfile.ZipFile(exports_dir() / Path(outcome.receipt.export.file).name) as archive:
        return json.loads(archive.read("export.json")), archive.read("README.txt").decode("utf-8")


def policy_with(tmp_path: Path, **controller: object) -> Path:
    text = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    text["controller"].update(controller)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(text, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.servers
def test_the_export_tells_the_person_their_rights_the_authority_and_where_data_came_from(
    databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=40, seed=43)
    policy = demo.config.policy
    assert policy.controller is not None
    document, readme = export_of(demo)
    assert document["language"] == "en"
    assert document["controller"] == {
        "name": "At Work",
        "address": None,
        "contact": "persondata@atwork.dk",
        "dpo": None,
    }
    rights = document["your_rights"]
    assert isinstance(rights, list)
    assert [r["article"] for r in rights] == ["Art 16", "Art 17", "Art 18", "Art 21", "Art 20"]
    complaint = document["complaint"]
    assert isinstance(complaint, dict) and complaint["authority"]["name"] == "Datatilsynet"
    obtained = demo.config.catalog.table("enrolment", "enrolments").obtained_from
    assert obtained and document["sources_of_data"] == {ENROLMENTS: obtained}
    assert document["automated_decisions"] == policy.automated_decisions
    for text in (
        "At Work",
        "Your rights:",
        "rectification",
        "(Art 16)",
        "Send requests to persondata@atwork.dk",
        "You may complain to Datatilsynet, Carl Jacobsens Vej 35",
        f"{ENROLMENTS}: {obtained}",
        "Automated decisions (Art 15(1)(h)):",
    ):
        assert text in readme, text

    # the same export in Danish, with a data protection officer named
    danish = load_config(CATALOG, policy_with(tmp_path, language="da", dpo="dpo@atwork.dk"))
    document, readme = export_of(dataclasses.replace(demo, config=danish))
    assert document["language"] == "da"
    for text in (
        "Dette arkiv indeholder en kopi af de personoplysninger, At Work har om dig",
        "Dine rettigheder:",
        "berigtigelse: at få urigtige oplysninger om dig rettet og ufuldstændige oplysninger udfyldt (art. 16)",
        "Du kan klage til Datatilsynet",
        "Vores databeskyttelsesrådgiver: dpo@atwork.dk",
    ):
        assert text in readme, text
    assert "Your rights" not in readme
    rights = document["your_rights"]
    assert isinstance(rights, list) and rights[0] == {"article": "Art 16", "right": RIGHTS[Language.DANISH][0].text}
    assert rights[0]["right"].startswith("berigtigelse")


def test_without_a_controller_the_export_still_names_the_right_to_complain() -> None:
    shipped = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    del shipped["controller"], shipped["automated_decisions"]
    readme = export_readme(Policy.model_validate(shipped), {})
    assert "a copy of the personal data we keep about you" in readme
    assert "the data protection authority of your country (Art 77)" in readme
    assert "All of it was collected from you." in readme
    assert "No decisions are made about you by automated means alone." in readme


@pytest.mark.servers
def test_the_compliance_report_names_the_controller_and_the_authority(
    databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=10, seed=3)
    control = sa.create_engine(demo.control_url)
    try:
        report = gather_report(demo.config, control, dt.date(2026, 3, 1))
    finally:
        control.dispose()
    text = render_markdown(report)
    assert "Controller: At Work, contact persondata@atwork.dk; supervisory authority: Datatilsynet" in text

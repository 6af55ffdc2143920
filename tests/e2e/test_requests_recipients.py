"""Recipients to tell (Art 19) on the receipts of a restriction and of an objection to marketing, as on an
erasure's, on SQLite, PostgreSQL and MariaDB; and one citation per request kind wherever a kind is named."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from retention.requests.kinds import ARTICLE, KIND_TEXT, RECIPIENTS_ARTICLE, SUPPRESSION_ARTICLE, RequestKind
from retention.requests.person_plan import SUPPRESSION_LABEL, request_label
from retention.requests.receipts import receipt_text
from retention.storage.schema import ledger
from tests.databases import ServerDatabases
from tests.requests_support import customer_identifiers, demo_estate, rows_of

SHARES = ("enrolment", "partner_shares")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.servers
def test_restriction_and_objection_receipts_list_the_recipients_to_tell(
    databases: ServerDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = demo_estate(monkeypatch, databases, tmp_path, people=80, seed=41)
    view = demo.view()
    customers = set(view.tagged[("enrolment", "customers")].frame["subject"])
    shared = Counter(s for s in view.tagged[SHARES].frame["subject"] if s in customers)
    restricted, objecting = (person for person, _ in shared.most_common(2))
    for person, kind in ((restricted, RequestKind.RESTRICTION), (objecting, RequestKind.MARKETING_OBJECTION)):
        mine = rows_of(view, {person})
        email = customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")])["email"]
        outcome = demo.carry_out(demo.register(kind, email=email))
        receipt = outcome.receipt
        assert receipt is not None
        assert receipt.recipients, f"{kind}: the person's data was shared, so someone is to be told"
        assert sum(r.records for r in receipt.recipients) == len(mine[SHARES]), kind
        text = receipt_text(receipt, demo.config.policy.controller)
        assert f"Recipients to tell (GDPR {RECIPIENTS_ARTICLE}):" in text
        assert text.rstrip().endswith(
            "At Work, contact persondata@atwork.dk. You may complain to Datatilsynet, Carl Jacobsens Vej 35, 2500 "
            "Valby, https://www.datatilsynet.dk (Art 77)."
        )
        assert f"Receipt for request #{receipt.request}: {KIND_TEXT[kind]}" in text
        assert ARTICLE[kind] in text

    # lifting a restriction tells nobody (Art 19 covers placing it)
    mine = rows_of(view, {restricted})
    email = customer_identifiers(demo.urls["enrolment"], mine[("enrolment", "customers")])["email"]
    lifted = demo.carry_out(demo.register(RequestKind.LIFT_RESTRICTION, email=email))
    assert lifted.receipt is not None and lifted.receipt.recipients == []

    # the objection's ledger entries cite the article the receipt cites
    engine = sa.create_engine(demo.control_url)
    try:
        with engine.connect() as conn:
            rules = set(conn.execute(sa.select(ledger.c.rule, ledger.c.legal_basis).distinct()).all())
    finally:
        engine.dispose()
    objection = [(rule, basis) for rule, basis in rules if rule.startswith("marketing objection")]
    assert objection and all(ARTICLE[RequestKind.MARKETING_OBJECTION] in r + b for r, b in objection)


def test_each_request_kind_is_cited_by_one_article_everywhere() -> None:
    """Receipts, ledger labels and the CLI take the article from one table; no module spells the articles of
    an objection itself (they were 21(2) in one place and 21(3) in another)."""
    assert set(ARTICLE) == set(RequestKind)
    for kind in RequestKind:
        assert KIND_TEXT[kind].endswith(f"({ARTICLE[kind]})")
    label = request_label(RequestKind.MARKETING_OBJECTION, 7)
    assert ARTICLE[RequestKind.MARKETING_OBJECTION] in label.rule
    assert label.legal_basis.startswith(f"GDPR {ARTICLE[RequestKind.MARKETING_OBJECTION]}:")
    assert SUPPRESSION_LABEL.legal_basis.startswith(f"GDPR {SUPPRESSION_ARTICLE}:")
    spelled = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("retention", "cli", "assets", "pipelines", "sensors")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "kinds.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "Art 21(" in line and not line.lstrip().startswith(("#", '"""'))
    ]
    assert spelled == [], spelled

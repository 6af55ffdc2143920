"""Erasure (Art 17): everything about the person is deleted or pseudonymised, except what the law keeps.

Rows of a table whose purposes all end in deletion are deleted, other rows pseudonymised with their columns'
anonymisers; vouchers inside their bookkeeping period and rows under a legal claim stay untouched and are
listed with the reason and until when. The recipients of the person's data are listed to be told (Art 19),
and an erasure supersedes a restriction.
"""

from __future__ import annotations

from retention.requests.context import PersonRequest
from retention.requests.person_plan import plan_and_apply
from retention.requests.receipts import Receipt, RestrictionReceipt, rows_text
from retention.requests.recipients import recipients_of
from retention.requests.restriction import lift_restrictions


def erase(person: PersonRequest, receipt: Receipt) -> Receipt:
    receipt.recipients = recipients_of(person.config, person.settings, person.estate, person.view, person.subjects)
    receipt.tables, receipt.verification = plan_and_apply(person)
    lifted = lift_restrictions(person.control, person.subjects, person.moment)
    if lifted:
        receipt.restriction = RestrictionReceipt(lifted=lifted, why="the erasure supersedes the restriction")
    receipt.summary = (
        f"Erased: {rows_text(receipt.deleted)} deleted and {rows_text(receipt.pseudonymised)} pseudonymised; "
        f"{rows_text(receipt.kept)} kept because the law requires it (see below)."
    )
    return receipt

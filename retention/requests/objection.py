"""Objection to direct marketing (Art 21(2)): the person's marketing rows go and they join the suppression list.

Rows of tables serving only the marketing purposes of `requests.yaml` are deleted, marketing fields of other
tables cleared; administrative data is untouched. The subject key and the keyed tokens of the identifiers go
on the suppression list, which the daily run honours when the person's data comes back.
"""

from __future__ import annotations

from retention.requests.context import PersonRequest
from retention.requests.person_plan import plan_and_apply
from retention.requests.receipts import Receipt, SuppressionReceipt, rows_text
from retention.requests.recipients import recipients_of
from retention.requests.suppression import add_suppressions

NOT_FOUND = " The identifiers given are on the marketing suppression list, so they will not be used for marketing."


def suppress(person: PersonRequest, receipt: Receipt) -> None:
    """Put the person on the suppression list: their subject keys, the tokens given and those the index knows.
    Done also when nothing was found, so that the identifiers given are not used for marketing later."""
    subjects = person.subjects
    tokens = [*person.request.tokens, *(t for t, s in person.view.index.tokens.items() if s in subjects)]
    added = add_suppressions(person.control, person.request.request_id, subjects, tokens)
    receipt.suppression = SuppressionReceipt(
        entries_added=added, honoured_by="the daily run, which removes marketing rows of people on the list"
    )


def object_to_marketing(person: PersonRequest, receipt: Receipt) -> Receipt:
    """The recipients of the person's data are read first, before their rows change, to be told (Art 19)."""
    receipt.recipients = recipients_of(person.config, person.settings, person.estate, person.view, person.subjects)
    receipt.tables, receipt.verification = plan_and_apply(person)
    receipt.summary = (
        f"Marketing stopped: {rows_text(receipt.deleted)} deleted and {rows_text(receipt.pseudonymised)} cleared of "
        "marketing fields; administrative data is untouched and the person is on the suppression list."
    )
    return receipt

"""Objection to direct marketing (Art 21(2)): the person's marketing rows go and they join the suppression list.

Rows of tables serving only the marketing purposes of `requests.yaml` are deleted, marketing fields of other
tables cleared; administrative data is untouched. The subject key and the keyed tokens of the identifiers go
on the suppression list, which the daily run honours when the person's data comes back.
"""

from __future__ import annotations

import datetime as dt

from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.requests.model import SubjectRequest
from retention.requests.person_plan import plan_and_apply
from retention.requests.receipts import Receipt, SuppressionReceipt, rows_text
from retention.requests.suppression import add_suppressions
from retention.requests.view import EstateView, Progress
from retention.storage.engines import Estate

NOT_FOUND = " The identifiers given are on the marketing suppression list, so they will not be used for marketing."


def suppress(request: SubjectRequest, view: EstateView, subjects: set[str], receipt: Receipt, estate: Estate) -> None:
    """Put the person on the suppression list: their subject keys, the tokens given and those the index knows."""
    assert estate.control is not None
    tokens = [*request.tokens, *(t for t, s in view.index.tokens.items() if s in subjects)]
    added = add_suppressions(estate.control, request.request_id, subjects, tokens)
    receipt.suppression = SuppressionReceipt(
        entries_added=added, honoured_by="the daily run, which removes marketing rows of people on the list"
    )


def object_to_marketing(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    settings: RequestSettings,
    request: SubjectRequest,
    view: EstateView,
    subjects: set[str],
    receipt: Receipt,
    *,
    run_id: str,
    moment: dt.datetime,
    progress: Progress | None,
) -> Receipt:
    receipt.tables, receipt.verification = plan_and_apply(
        config, estate, keyring, settings, request, view, subjects, run_id=run_id, moment=moment, progress=progress
    )
    receipt.summary = (
        f"Marketing stopped: {rows_text(receipt.deleted)} deleted and {rows_text(receipt.pseudonymised)} cleared of "
        "marketing fields; administrative data is untouched and the person is on the suppression list."
    )
    return receipt

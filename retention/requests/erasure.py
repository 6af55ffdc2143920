"""Erasure (Art 17): everything about the person is deleted or pseudonymised, except what the law keeps.

Rows of a table whose purposes all end in deletion are deleted, other rows pseudonymised with their columns'
anonymisers; vouchers inside their bookkeeping period and rows under a legal claim stay untouched and are
listed with the reason and until when. The recipients of the person's data are listed to be told (Art 19),
and an erasure supersedes a restriction.
"""

from __future__ import annotations

import datetime as dt

from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.requests.model import SubjectRequest
from retention.requests.person_plan import plan_and_apply
from retention.requests.receipts import Receipt, RestrictionReceipt, rows_text
from retention.requests.recipients import recipients_of
from retention.requests.restriction import lift_restrictions
from retention.requests.view import EstateView, Progress
from retention.storage.engines import Estate


def erase(
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
    receipt.recipients = recipients_of(config, settings, estate, view, subjects)
    receipt.tables, receipt.verification = plan_and_apply(
        config, estate, keyring, settings, request, view, subjects, run_id=run_id, moment=moment, progress=progress
    )
    assert estate.control is not None
    lifted = lift_restrictions(estate.control, subjects, moment)
    if lifted:
        receipt.restriction = RestrictionReceipt(lifted=lifted, why="the erasure supersedes the restriction")
    receipt.summary = (
        f"Erased: {rows_text(receipt.deleted)} deleted and {rows_text(receipt.pseudonymised)} pseudonymised; "
        f"{rows_text(receipt.kept)} kept because the law requires it (see below)."
    )
    return receipt

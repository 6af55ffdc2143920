"""Restriction (Art 18) and its lifting: the daily plan holds every row of the person while it is in force."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import sqlalchemy as sa

from retention.requests.context import PersonRequest
from retention.requests.kinds import RequestKind
from retention.requests.receipts import KeptRows, Receipt, RestrictionReceipt, TableReceipt, rows_text
from retention.requests.recipients import recipients_of
from retention.rules.holds import HOLD_RESTRICTION, HOLD_WHY
from retention.storage.schema import restrictions


def lift_restrictions(control: sa.Engine | sa.Connection, subjects: Collection[str], moment: dt.datetime) -> int:
    """End the restrictions in force for these subjects; returns how many were lifted."""
    statement = (
        restrictions.update()
        .where(restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None))
        .values(lifted_at=moment)
    )
    if isinstance(control, sa.Connection):
        return int(control.execute(statement).rowcount)
    with control.begin() as conn:
        return int(conn.execute(statement).rowcount)


def restrict(person: PersonRequest, receipt: Receipt) -> Receipt:
    """Place or lift the person's restriction; the receipt lists the rows it covers and, for a restriction, the
    recipients of the person's data, who are to be told of it (Art 19)."""
    subjects, moment = person.subjects, person.moment
    restricting = person.request.kind is RequestKind.RESTRICTION
    if restricting:
        receipt.recipients = recipients_of(person.config, person.settings, person.estate, person.view, subjects)
    found = {tid: len(rows) for tid in person.view.tagged if not (rows := person.view.rows_of(tid, subjects)).empty}
    why = HOLD_WHY[HOLD_RESTRICTION]
    receipt.tables = [
        TableReceipt(
            source=s,
            table=t,
            rows_found=n,
            kept=[KeptRows(reason=HOLD_RESTRICTION, rows=n, why=why)] if restricting else [],
        )
        for (s, t), n in found.items()
    ]
    rows = sum(found.values())
    with person.control.begin() as conn:
        if not restricting:
            lifted = lift_restrictions(conn, subjects, moment)
        else:
            active = set(
                conn.execute(
                    sa.select(restrictions.c.subject).where(
                        restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None)
                    )
                ).scalars()
            )
            new = sorted(subjects - active)
            if new:
                conn.execute(
                    restrictions.insert(),
                    [{"subject": s, "request_id": person.request.request_id, "placed_at": moment} for s in new],
                )
    if restricting:
        receipt.restriction = RestrictionReceipt(placed=len(new), already_in_force=len(subjects & active))
        receipt.summary = (
            f"Restricted: the {rows_text(rows)} found are only stored from now on; the daily run plans nothing for "
            "them (reported as held: restriction) until the restriction is lifted."
        )
        return receipt
    receipt.restriction = RestrictionReceipt(lifted=lifted)
    receipt.summary = (
        f"Restriction lifted: the {rows_text(rows)} found follow the retention schedule again from the next daily run."
        if lifted
        else "There was no restriction in force for this person; nothing changed."
    )
    return receipt

"""Restriction (Art 18) and its lifting: the daily plan holds every row of the person while it is in force."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from retention.requests.model import RequestKind, SubjectRequest
from retention.requests.receipts import rows_text
from retention.requests.view import EstateView
from retention.storage.schema import restrictions


def restrict(
    control: sa.Engine,
    view: EstateView,
    subjects: set[str],
    request: SubjectRequest,
    receipt: dict[str, object],
    moment: dt.datetime,
) -> dict[str, object]:
    """Restriction (Art 18): the daily plan holds every row of the person until the restriction is lifted."""
    restricting = request.kind is RequestKind.RESTRICTION
    found = {tid: len(rows) for tid in view.tagged if not (rows := view.rows_of(tid, subjects)).empty}
    receipt["tables"] = [
        {
            "source": s,
            "table": t,
            "rows_found": n,
            "deleted": 0,
            "pseudonymised": 0,
            "fields_changed": [],
            "kept": [{"reason": "restriction", "rows": n, "until": None, "why": "restricted: stored only (Art 18)"}]
            if restricting
            else [],
            "unchanged": [],
            "notes": [],
        }
        for (s, t), n in found.items()
    ]
    rows = sum(found.values())
    with control.begin() as conn:
        active = set(
            conn.execute(
                sa.select(restrictions.c.subject).where(
                    restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None)
                )
            ).scalars()
        )
        if restricting:
            new = sorted(subjects - active)
            if new:
                conn.execute(
                    restrictions.insert(),
                    [{"subject": s, "request_id": request.request_id, "placed_at": moment} for s in new],
                )
            receipt["restriction"] = {"placed": len(new), "already in force": len(subjects & active)}
            receipt["summary"] = (
                f"Restricted: the {rows_text(rows)} found are only stored from now on; the daily run plans nothing for "
                "them (reported as held: restriction) until the restriction is lifted."
            )
            return receipt
        lifted = conn.execute(
            restrictions.update()
            .where(restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None))
            .values(lifted_at=moment)
        ).rowcount
    receipt["restriction"] = {"lifted": int(lifted)}
    receipt["summary"] = (
        f"Restriction lifted: the {rows_text(rows)} found follow the retention schedule again from the next daily run."
        if lifted
        else "There was no restriction in force for this person; nothing changed."
    )
    return receipt

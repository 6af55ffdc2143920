"""Erasure (Art 17) and objection to marketing (Art 21(2)): plan the person, apply, receipt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import sqlalchemy as sa

from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.requests.model import RequestKind, SubjectRequest
from retention.requests.person_plan import apply_person_plan, plan_for_person, request_label
from retention.requests.receipts import rows_text, table_receipts
from retention.requests.recipients import recipients_of
from retention.requests.view import EstateView, Progress
from retention.storage.control import (
    load_done,
    load_holds,
    load_known_subjects,
)
from retention.storage.engines import Estate
from retention.storage.schema import restrictions


def erase_or_object(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    settings: RequestSettings,
    request: SubjectRequest,
    view: EstateView,
    subjects: set[str],
    receipt: dict[str, object],
    run_id: str,
    moment: dt.datetime,
    progress: Progress | None,
) -> dict[str, object]:
    control = estate.control
    assert control is not None
    holds = load_holds(control)
    person = plan_for_person(
        config,
        view,
        subjects,
        request.kind,
        label=request_label(request.kind, request.request_id),
        now=moment,
        holds=holds,
        done=load_done(control),
        known=load_known_subjects(control),
        settings=settings,
    )
    if request.kind is RequestKind.ERASURE:
        receipt["recipients"] = recipients_of(config, settings, estate, view, subjects)
    applied = apply_person_plan(config, estate, keyring, person.plan, run_id=run_id, progress=progress)
    receipt["tables"] = table_receipts(person.decisions, applied)
    receipt["verification"] = {"passed": not applied.problems, "problems": applied.problems}
    deleted = sum(int(t["deleted"]) for t in receipt["tables"])  # type: ignore[union-attr]
    changed = sum(int(t["pseudonymised"]) for t in receipt["tables"])  # type: ignore[union-attr]
    kept = sum(int(k["rows"]) for t in receipt["tables"] for k in t["kept"])  # type: ignore[union-attr]
    if request.kind is RequestKind.ERASURE:
        lifted = _lift_restrictions(control, subjects, moment)
        if lifted:
            receipt["restriction"] = {"lifted": lifted, "why": "the erasure supersedes the restriction"}
        receipt["summary"] = (
            f"Erased: {rows_text(deleted)} deleted and {rows_text(changed)} pseudonymised; {rows_text(kept)} kept "
            "because the law requires it (see below)."
        )
    else:
        receipt["summary"] = (
            f"Marketing stopped: {rows_text(deleted)} deleted and {rows_text(changed)} cleared of marketing fields; "
            "administrative data is untouched and the person is on the suppression list."
        )
    return receipt


def _lift_restrictions(control: sa.Engine, subjects: Collection[str], moment: dt.datetime) -> int:
    with control.begin() as conn:
        result = conn.execute(
            restrictions.update()
            .where(restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None))
            .values(lifted_at=moment)
        )
        return int(result.rowcount)

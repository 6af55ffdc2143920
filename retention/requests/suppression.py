"""The marketing suppression list, and the daily run's part of honouring it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.catalog import IdentifierKind, TableId
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings
from retention.daily.subjects import SubjectIndex
from retention.requests.kinds import RequestKind
from retention.requests.person_plan import SUPPRESSION_LABEL, PersonPlan, plan_for_person
from retention.requests.register import (
    subjects_of_tokens,
    tokens_of,
)
from retention.requests.view import EstateView
from retention.rules.calendar import end_of_day
from retention.rules.holds import Holds
from retention.rules.identity import DEFAULT_REGION
from retention.storage.schema import ensure_schema, marketing_suppressions


@dataclass(frozen=True)
class Suppressions:
    """Subject keys and keyed identifier tokens whose marketing data the daily run removes.

    `rules` maps each subject or token to the request that put it on the list, for the ledger's rule.
    """

    subjects: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()
    rules: dict[str, int] = field(default_factory=dict)


def add_suppressions(control: sa.Engine, request_id: int, subjects: Iterable[str], tokens: Iterable[str]) -> int:
    """Put subjects and tokens on the list (once each); returns how many entries were new."""
    current = load_suppressions(control)
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"subject": s, "token": None, "request_id": request_id, "placed_at": now}
        for s in sorted(set(subjects) - current.subjects)
    ]
    rows += [
        {"subject": None, "token": t, "request_id": request_id, "placed_at": now}
        for t in sorted(set(tokens) - current.tokens)
    ]
    if rows:
        with control.begin() as conn:
            conn.execute(marketing_suppressions.insert(), rows)
    return len(rows)


def load_suppressions(control: sa.Engine) -> Suppressions:
    ensure_schema(control)
    with control.connect() as conn:
        rows = conn.execute(
            sa.select(
                marketing_suppressions.c.subject, marketing_suppressions.c.token, marketing_suppressions.c.request_id
            ).order_by(marketing_suppressions.c.suppression_id)
        ).all()
    rules: dict[str, int] = {}
    for subject, token, request_id in rows:
        rules.setdefault(subject or token, request_id)
    return Suppressions(frozenset(s for s, _, _ in rows if s), frozenset(t for _, t, _ in rows if t), rules)


def is_suppressed(
    control: sa.Engine, key: Key, kind: IdentifierKind, value: str, regions: Sequence[str] = (DEFAULT_REGION,)
) -> bool:
    """For the newsletter's sign-up form: has this e-mail (or phone) objected to marketing? Keyed, no clear text."""
    tokens = tokens_of(key, {kind: value}, regions)
    if not tokens:
        return False
    current = load_suppressions(control)
    if set(tokens) & current.tokens:
        return True
    return bool(set(subjects_of_tokens(control, tokens).values()) & current.subjects)


def suppressed_subjects(index: SubjectIndex, suppressions: Suppressions) -> dict[str, int]:
    """subject -> request id of everyone on the suppression list, by subject key or identifier token."""
    found = {s: suppressions.rules[s] for s in suppressions.subjects}
    for token in suppressions.tokens:
        subject = index.tokens.get(token)
        if subject is not None:
            found.setdefault(subject, suppressions.rules[token])
    return found


def plan_suppression(
    config: EstateConfig,
    view: EstateView,
    suppressions: Suppressions,
    settings: RequestSettings,
    as_of: dt.date,
    *,
    holds: Holds,
    done: Mapping[TableId, Collection[tuple[object, str]]],
    known: Mapping[TableId, pd.DataFrame],
) -> PersonPlan | None:
    """The daily run's part of honouring objections: marketing rows of people on the suppression list that
    appeared again (a new sign-up, a restored backup) are removed. `view` is read after the day's apply, so
    what the daily plan deleted is no longer in it."""
    subjects = suppressed_subjects(view.index, suppressions)
    if not subjects or not settings.marketing_purposes:
        return None
    moment = end_of_day(as_of, config.policy.timezone).to_pydatetime()
    return plan_for_person(
        config,
        view,
        set(subjects),
        RequestKind.MARKETING_OBJECTION,
        label=SUPPRESSION_LABEL,
        now=moment,
        holds=holds,
        done=done,
        known=known,
        settings=settings,
    )

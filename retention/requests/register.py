"""The register of subject requests in the control database, the per-person locks and the marketing
suppression list, and the settings of request handling (`requests.yaml` next to the catalog).

A request keeps the identifiers the person gave (as JSON, ASCII-escaped so any text survives any database)
only until it is done; from then on only the identifier kinds, the subject keys found and the receipt remain.
Keyed identifier tokens are computed at registration so that the sensor can tell whose request it is without
the raw values; they are dropped with the identifiers. The suppression list holds subject keys and keyed
tokens, never an e-mail in clear.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.catalog import IdentifierKind
from retention.config.requests import RequestSettings
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.locks import release_locks
from retention.requests.model import MAX_IDENTIFIER_CHARS, SubjectRequest
from retention.requests.receipts import Receipt
from retention.rules.calendar import add_period_to, utc
from retention.rules.identity import DEFAULT_REGION, identifier_token, normalise
from retention.storage.schema import ensure_schema, subject_requests, subject_tokens


def _row(row: sa.RowMapping) -> SubjectRequest:
    def when(value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else utc(value)

    return SubjectRequest(
        request_id=row["request_id"],
        kind=RequestKind(row["kind"]),
        received_at=utc(row["received_at"]),
        deadline=utc(row["deadline"]),
        status=RequestStatus(row["status"]),
        attempt=row["attempt"],
        identifier_kinds=tuple(k for k in row["identifier_kinds"].split(",") if k),
        identifiers=json.loads(row["identifiers"]) if row["identifiers"] is not None else None,
        tokens=tuple(t for t in (row["tokens"] or "").split(",") if t),
        subjects=tuple(s for s in (row["subjects"] or "").split(",") if s),
        run_id=row["run_id"],
        started_at=when(row["started_at"]),
        completed_at=when(row["completed_at"]),
        outcome=row["outcome"],
        receipt=Receipt.from_json(row["receipt"]) if row["receipt"] else None,
    )


def check_identifier(kind: IdentifierKind, value: str) -> None:
    """Identifiers are data: any text is accepted, except what no database can hold or nobody could mean."""
    if len(value) > MAX_IDENTIFIER_CHARS:
        raise ValueError(f"the {kind.value} given has {len(value):,} characters; at most {MAX_IDENTIFIER_CHARS:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {kind.value} given is not valid text (it holds a lone surrogate)") from None


def tokens_of(
    key: Key, identifiers: Mapping[IdentifierKind, str], regions: Sequence[str] = (DEFAULT_REGION,)
) -> list[str]:
    """Keyed tokens of the identifiers, normalised exactly as the snapshots normalise the estate's values; a
    phone number without its country code is read in each of the estate's phone `regions`."""
    tokens = []
    for kind, value in identifiers.items():
        for region in regions if kind is IdentifierKind.PHONE else regions[:1]:
            norm = normalise(kind, value, region)
            if norm:
                tokens.append(identifier_token(key, kind, norm))
    return list(dict.fromkeys(tokens))


def deadline_for(received_at: dt.datetime, settings: RequestSettings, tz: ZoneInfo) -> dt.datetime:
    """Art 12(3): one month after receipt, counted on the business calendar (31 January -> 28 February)."""
    return add_period_to(received_at, settings.answer_within, tz)


def register_request(
    control: sa.Engine,
    key: Key,
    kind: RequestKind,
    identifiers: Mapping[IdentifierKind, str],
    settings: RequestSettings,
    tz: ZoneInfo,
    *,
    received_at: dt.datetime | None = None,
    regions: Sequence[str] = (DEFAULT_REGION,),
) -> int:
    """Store a new pending request and return its id; `regions`: the estate's phone regions (`Catalog.regions`)."""
    if not identifiers:
        raise ValueError("give at least one identifier: --email, --phone or --customer-number")
    for ident_kind, value in identifiers.items():
        check_identifier(ident_kind, value)
    received = utc(received_at or dt.datetime.now(dt.UTC))
    ensure_schema(control)
    with control.begin() as conn:
        result = conn.execute(
            subject_requests.insert().values(
                kind=kind.value,
                received_at=received,
                deadline=deadline_for(received, settings, tz),
                status=RequestStatus.PENDING.value,
                attempt=1,
                identifier_kinds=",".join(k.value for k in identifiers),
                identifiers=json.dumps({k.value: v for k, v in identifiers.items()}, ensure_ascii=True),
                tokens=",".join(tokens_of(key, identifiers, regions)),
            )
        )
        inserted = result.inserted_primary_key
        assert inserted is not None, "a single-row insert reports its primary key"
        return int(inserted[0])


def get_request(control: sa.Engine, request_id: int) -> SubjectRequest | None:
    ensure_schema(control)
    with control.connect() as conn:
        row = (
            conn.execute(sa.select(subject_requests).where(subject_requests.c.request_id == request_id))
            .mappings()
            .first()
        )
    return None if row is None else _row(row)


def list_requests(control: sa.Engine, statuses: Collection[RequestStatus] | None = None) -> list[SubjectRequest]:
    ensure_schema(control)
    query = sa.select(subject_requests).order_by(subject_requests.c.request_id)
    if statuses:
        query = query.where(subject_requests.c.status.in_([s.value for s in statuses]))
    with control.connect() as conn:
        return [_row(r) for r in conn.execute(query).mappings()]


def claim_request(control: sa.Engine, request_id: int, run_id: str) -> bool:
    """Mark a pending or failed request running for this run; False if another run has it or it is done."""
    with control.begin() as conn:
        result = conn.execute(
            subject_requests.update()
            .where(
                subject_requests.c.request_id == request_id,
                subject_requests.c.status.in_([RequestStatus.PENDING.value, RequestStatus.FAILED.value]),
            )
            .values(status=RequestStatus.RUNNING.value, run_id=run_id[:64], started_at=dt.datetime.now(dt.UTC))
        )
        return result.rowcount == 1


def complete_request(
    control: sa.Engine, request_id: int, subjects: Iterable[str], outcome: str, receipt: Receipt
) -> None:
    """Done: the receipt is stored and the raw identifiers and their tokens are dropped."""
    with control.begin() as conn:
        conn.execute(
            subject_requests.update()
            .where(subject_requests.c.request_id == request_id)
            .values(
                status=RequestStatus.DONE.value,
                completed_at=dt.datetime.now(dt.UTC),
                subjects=",".join(sorted(set(subjects))),
                outcome=outcome[:500],
                receipt=receipt.to_json(),
                identifiers=None,
                tokens=None,
            )
        )


def fail_request(control: sa.Engine, request_id: int, outcome: str) -> None:
    """Failed: identifiers stay, so the request can be run again (`retention request run ID`)."""
    with control.begin() as conn:
        conn.execute(
            subject_requests.update()
            .where(subject_requests.c.request_id == request_id)
            .values(status=RequestStatus.FAILED.value, outcome=outcome[:500])
        )
    release_locks(control, request_id)


def requeue_request(control: sa.Engine, request_id: int, outcome: str) -> None:
    """Back to pending under a new attempt number, so the sensor launches it again under a new run key."""
    with control.begin() as conn:
        conn.execute(
            subject_requests.update()
            .where(subject_requests.c.request_id == request_id)
            .values(
                status=RequestStatus.PENDING.value,
                attempt=subject_requests.c.attempt + 1,
                outcome=outcome[:500],
                run_id=None,
            )
        )
    release_locks(control, request_id)


def person_keys(control: sa.Engine, tokens: Collection[str]) -> list[str]:
    """The subject keys earlier runs tied to these tokens, and the tokens nobody is tied to yet.

    Cheap (no source is read), so the sensor can use it to keep two runs for one person apart.
    """
    known = subjects_of_tokens(control, tokens)
    return sorted({known.get(t, t) for t in tokens})


def subjects_of_tokens(control: sa.Engine, tokens: Collection[str]) -> dict[str, str]:
    """token -> subject key as remembered by the subject index (after this run's index is saved)."""
    if not tokens:
        return {}
    with control.connect() as conn:
        return dict(
            conn.execute(
                sa.select(subject_tokens.c.token, subject_tokens.c.subject).where(subject_tokens.c.token.in_(tokens))
            ).all()
        )

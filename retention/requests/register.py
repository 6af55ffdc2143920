"""The register of subject requests in the control database and the marketing suppression list, and the
settings of request handling (`requests.yaml` next to the catalog).

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
from retention.requests.model import MAX_IDENTIFIER_CHARS, SubjectRequest
from retention.requests.receipts import Receipt
from retention.rules.calendar import add_period_to, utc
from retention.rules.identity import DEFAULT_REGION, identifier_problem, identifier_token, normalise
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


IDENTIFIER_OPTIONS = {
    IdentifierKind.EMAIL: "--email",
    IdentifierKind.PHONE: "--phone",
    IdentifierKind.CUSTOMER_NUMBER: "--customer-number",
}
"""How support staff give each kind of identifier (`retention request ...`); refusals name the option."""


EARLIEST_RECEIVED = dt.date(2000, 1, 1)
"""No request older than this is registered: it would be long past every deadline and every statute."""


CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far in the future a moment of receipt may lie: the clocks of the machines involved differ a little."""


MAX_REQUEST_ID = 2**31 - 1
"""Request ids are 32-bit integers on PostgreSQL and MariaDB; a larger number can be no request."""


class RequestInputError(ValueError):
    """A request's input is refused before anything is stored: one line saying what is wrong and how to fix it,
    never repeating an identifier (which is personal data)."""


def check_identifier(kind: IdentifierKind, value: str, regions: Sequence[str] = (DEFAULT_REGION,)) -> None:
    """Identifiers are data, matched only through keyed tokens: any text that parses as one of its kind is
    accepted (an e-mail address, a phone number possible in one of the estate's `regions`, a customer number
    not empty once spaces are dropped), and nothing no database can hold or nobody could mean."""
    option = IDENTIFIER_OPTIONS[kind]
    if not isinstance(value, str):
        raise RequestInputError(f"{option} is not text; give it as the person wrote it")
    if len(value) > MAX_IDENTIFIER_CHARS:
        raise RequestInputError(f"{option} has {len(value):,} characters; at most {MAX_IDENTIFIER_CHARS:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestInputError(
            f"{option} is not valid text (it holds a lone surrogate); type it again rather than pasting it"
        ) from None
    problem = identifier_problem(kind, value, regions)
    if problem:
        raise RequestInputError(f"{option} {problem}")


def check_identifiers(identifiers: Mapping[IdentifierKind, str], regions: Sequence[str] = (DEFAULT_REGION,)) -> None:
    """At least one identifier, each one valid for its kind (`check_identifier`)."""
    if not identifiers:
        raise RequestInputError("give at least one identifier: --email, --phone or --customer-number")
    for kind, value in identifiers.items():
        check_identifier(kind, value, regions)


def check_received(received_at: dt.datetime | None, tz: ZoneInfo, *, now: dt.datetime | None = None) -> dt.datetime:
    """When the request reached us, in UTC: now if not given, else not before `EARLIEST_RECEIVED` (the day in
    the moment's own zone; a naive moment is UTC, as `utc` reads it) and not after now, give or take
    `CLOCK_SKEW` (today's date is the business time zone's, `tz`). Checked before any arithmetic, so that year 1
    or 9999 is refused rather than overflowing."""
    current = utc(now or dt.datetime.now(dt.UTC))
    if received_at is None:
        return current
    local = received_at if received_at.tzinfo is not None else received_at.replace(tzinfo=dt.UTC)
    shown = local.date().isoformat() + ("" if local.time() == dt.time() else f" {local:%H:%M}")  # year 1: 0001
    if local.date() < EARLIEST_RECEIVED:
        raise RequestInputError(
            f"--received {shown} is before {EARLIEST_RECEIVED}; give the day the request reached us, YYYY-MM-DD"
        )
    future = RequestInputError(
        f"--received {shown} is in the future; give the day the request reached us, today at the latest"
    )
    if local.date() > current.astimezone(tz).date() + dt.timedelta(days=1):
        raise future  # before converting: 9999-12-31 in a zone west of UTC has no UTC moment
    received = utc(local)
    if received > current + CLOCK_SKEW:
        raise future
    return received


def parse_request_id(text: str) -> int:
    """A request id as typed (`retention request show 12`): a whole number from 1 to `MAX_REQUEST_ID`."""
    value = text.strip()
    digits = value.lstrip("0")
    if not (value.isascii() and value.isdigit()) or len(digits) > len(str(MAX_REQUEST_ID)):  # no 10,000-digit int()
        value = "0"
    if not 1 <= int(value) <= MAX_REQUEST_ID:
        raise RequestInputError(
            f"request ids are positive whole numbers up to {MAX_REQUEST_ID}; `retention request list` shows the "
            "register"
        )
    return int(value)


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
    """Store a new pending request and return its id; `regions`: the estate's phone regions (`Catalog.regions`).

    Fails closed: identifiers that are not what their kind says and moments of receipt out of bounds raise
    RequestInputError (a ValueError) before anything is written (`check_identifiers`, `check_received`)."""
    check_identifiers(identifiers, regions)
    received = check_received(received_at, tz)
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
    """The request, or None if there is none with this id (nor can be: out of range of the id column)."""
    if isinstance(request_id, bool) or not isinstance(request_id, int) or not 1 <= request_id <= MAX_REQUEST_ID:
        return None
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
    """Mark the request running for this run; False if it is done. The caller holds the request's lease, so a
    request still marked running belonged to a run that was killed: this run finishes it."""
    with control.begin() as conn:
        result = conn.execute(
            subject_requests.update()
            .where(
                subject_requests.c.request_id == request_id,
                subject_requests.c.status != RequestStatus.DONE.value,
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

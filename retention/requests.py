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
import os
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import mysql

from anonymizers.keys import Key
from retention.catalog import IdentifierKind
from retention.config import EstateConfig, Problem
from retention.control import subject_tokens
from retention.identity import identifier_token, normalise
from retention.periods import Period

REQUESTS_FILE_ENV = "RETENTION_REQUESTS"
MAX_IDENTIFIER_CHARS = 65_536
"""Longer input is refused: no identifier is that long, and the register must stay small."""


class RequestKind(StrEnum):
    ERASURE = "erasure"
    MARKETING_OBJECTION = "marketing_objection"
    ACCESS = "access"
    RESTRICTION = "restriction"
    LIFT_RESTRICTION = "lift_restriction"


class RequestStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


KIND_TEXT = {
    RequestKind.ERASURE: "erasure (Art 17)",
    RequestKind.MARKETING_OBJECTION: "objection to marketing (Art 21(2))",
    RequestKind.ACCESS: "access and portability (Art 15, 20)",
    RequestKind.RESTRICTION: "restriction (Art 18)",
    RequestKind.LIFT_RESTRICTION: "lifting a restriction (Art 18(3))",
}

_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

metadata = sa.MetaData()

subject_requests = sa.Table(
    "subject_requests",
    metadata,
    sa.Column("request_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("identifier_kinds", sa.String(60), nullable=False),
    sa.Column("identifiers", _LONG_TEXT),  # raw, as ASCII JSON; NULL once the request is done
    sa.Column("tokens", sa.Text),  # keyed tokens of the identifiers; NULL once the request is done
    sa.Column("subjects", sa.Text),  # subject keys found, comma-separated
    sa.Column("run_id", sa.String(64)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(500)),
    sa.Column("receipt", _LONG_TEXT),  # JSON, no identifiers
)

request_locks = sa.Table(
    "request_locks",
    metadata,
    sa.Column("lock_key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(40), nullable=False, index=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
)

marketing_suppressions = sa.Table(
    "marketing_suppressions",
    metadata,
    sa.Column("suppression_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(40), index=True),
    sa.Column("token", sa.String(40), index=True),
    sa.Column("request_id", sa.Integer, nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
)

replays = sa.Table(
    "replays",
    metadata,
    sa.Column("replay_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("since", sa.Date, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("batches_replayed", sa.Integer, nullable=False, default=0),
    sa.Column("batches_already_there", sa.Integer, nullable=False, default=0),
    sa.Column("rows", sa.Integer, nullable=False, default=0),
    sa.Column("mismatched_rows", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(12), nullable=False),
)


def ensure_request_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)


def utc(moment: dt.datetime) -> dt.datetime:
    """SQLite and MariaDB hand back naive datetimes for aware columns; what we store is always UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


# --- settings -----------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecipientTable(_Strict):
    """Records of what was disclosed to whom: the recipients to tell of an erasure (Art 19)."""

    table: str = Field(description="'source.table' of the disclosure records")
    recipient: str = Field(description="column naming the recipient")
    data: str | None = Field(default=None, description="column describing what was disclosed")
    date: str | None = Field(default=None, description="column with when it was disclosed")


class RequestSettings(_Strict):
    answer_within: Period = Field(default=Period(1, "months"), description="Art 12(3): one month")
    export_keep_days: int = Field(default=30, ge=1, le=366)
    lock_wait_seconds: int = Field(default=600, ge=0)
    stale_lock_hours: int = Field(default=6, ge=1)
    recipients: list[RecipientTable] = Field(default_factory=list)
    marketing_purposes: list[str] = Field(default_factory=list)

    @field_validator("answer_within", mode="before")
    @classmethod
    def _period(cls, value: object) -> Period:
        return Period.parse(value)


class RequestSettingsError(Exception):
    """requests.yaml cannot be used; the message names the file, the entry and the fix."""


def settings_path(config: EstateConfig) -> Path:
    """`requests.yaml` beside the catalog it describes (or RETENTION_REQUESTS)."""
    return Path(os.environ.get(REQUESTS_FILE_ENV) or Path(config.catalog_file).parent / "requests.yaml")


def load_request_settings(config: EstateConfig) -> RequestSettings:
    """The settings, checked against the catalog and policy; defaults when the file does not exist."""
    path = settings_path(config)
    if not path.exists():
        return RequestSettings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        settings = RequestSettings.model_validate(data)
    except (yaml.YAMLError, ValueError) as exc:
        raise RequestSettingsError(f"{path}: {exc}") from None
    problems = _cross_check(settings, config, str(path))
    if problems:
        raise RequestSettingsError("\n".join(f"- {p}" for p in problems))
    return settings


def _cross_check(settings: RequestSettings, config: EstateConfig, file: str) -> list[Problem]:
    problems = []
    catalog = config.catalog
    for i, rec in enumerate(settings.recipients):
        source, _, table = rec.table.partition(".")
        if source not in catalog.sources or table not in catalog.sources[source].tables:
            problems.append(
                Problem(file, f"recipients[{i}].table", f"unknown table {rec.table!r}", "write 'source.table'")
            )
            continue
        entry = catalog.table(source, table)
        known = {*entry.columns, *entry.not_personal, *entry.timestamp_columns()}
        for name in ("recipient", "data", "date"):
            column = getattr(rec, name)
            if column is not None and column not in known:
                problems.append(
                    Problem(
                        file,
                        f"recipients[{i}].{name}",
                        f"column {column!r} is not in the catalog entry of {rec.table}",
                        "name a column listed under columns, not_personal or the table's dates",
                    )
                )
    for i, purpose in enumerate(settings.marketing_purposes):
        if purpose not in config.policy.purposes:
            problems.append(
                Problem(file, f"marketing_purposes[{i}]", f"unknown purpose {purpose!r}", "name a policy purpose")
            )
    return problems


# --- the register -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectRequest:
    """One row of the register. The raw identifiers are left out of repr, so logging a request is safe."""

    request_id: int
    kind: RequestKind
    received_at: dt.datetime
    deadline: dt.datetime
    status: RequestStatus
    attempt: int
    identifier_kinds: tuple[str, ...]
    identifiers: dict[str, str] | None = field(repr=False)
    tokens: tuple[str, ...] = field(repr=False)
    subjects: tuple[str, ...]
    run_id: str | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    outcome: str | None
    receipt: dict | None = field(repr=False)

    def overdue(self, now: dt.datetime | None = None) -> bool:
        """Past the deadline and not answered, or answered after it."""
        moment = self.completed_at or now or dt.datetime.now(dt.UTC)
        return moment > self.deadline


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
        receipt=json.loads(row["receipt"]) if row["receipt"] else None,
    )


def check_identifier(kind: IdentifierKind, value: str) -> None:
    """Identifiers are data: any text is accepted, except what no database can hold or nobody could mean."""
    if len(value) > MAX_IDENTIFIER_CHARS:
        raise ValueError(f"the {kind.value} given has {len(value):,} characters; at most {MAX_IDENTIFIER_CHARS:,}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {kind.value} given is not valid text (it holds a lone surrogate)") from None


def tokens_of(key: Key, identifiers: Mapping[IdentifierKind, str]) -> list[str]:
    """Keyed tokens of the identifiers, normalised exactly as the snapshots normalise the estate's values."""
    tokens = []
    for kind, value in identifiers.items():
        norm = normalise(kind, value)
        if norm:
            tokens.append(identifier_token(key, kind, norm))
    return tokens


def deadline_for(received_at: dt.datetime, settings: RequestSettings, tz: ZoneInfo) -> dt.datetime:
    """Art 12(3): one month after receipt, counted on the business calendar (31 January -> 28 February)."""
    local = utc(received_at).astimezone(tz).replace(tzinfo=None)
    return settings.answer_within.after(local).replace(tzinfo=tz).astimezone(dt.UTC)


def register_request(
    control: sa.Engine,
    key: Key,
    kind: RequestKind,
    identifiers: Mapping[IdentifierKind, str],
    settings: RequestSettings,
    tz: ZoneInfo,
    *,
    received_at: dt.datetime | None = None,
) -> int:
    """Store a new pending request and return its id."""
    if not identifiers:
        raise ValueError("give at least one identifier: --email, --phone or --customer-number")
    for ident_kind, value in identifiers.items():
        check_identifier(ident_kind, value)
    received = utc(received_at or dt.datetime.now(dt.UTC))
    ensure_request_schema(control)
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
                tokens=",".join(dict.fromkeys(tokens_of(key, identifiers))),
            )
        )
        return int(result.inserted_primary_key[0])


def get_request(control: sa.Engine, request_id: int) -> SubjectRequest | None:
    ensure_request_schema(control)
    with control.connect() as conn:
        row = (
            conn.execute(sa.select(subject_requests).where(subject_requests.c.request_id == request_id))
            .mappings()
            .first()
        )
    return None if row is None else _row(row)


def list_requests(control: sa.Engine, statuses: Collection[RequestStatus] | None = None) -> list[SubjectRequest]:
    ensure_request_schema(control)
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
    control: sa.Engine, request_id: int, subjects: Iterable[str], outcome: str, receipt: Mapping[str, object]
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
                receipt=json.dumps(receipt, ensure_ascii=True, sort_keys=True),
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


# --- who a request is about, before the estate is read -------------------------------------------------------


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


# --- locks: never two requests for one person at once --------------------------------------------------------


class LockBusy(Exception):
    """Another request for the same person holds a lock."""


def _owner(request_id: int) -> str:
    return f"request:{request_id}"


def acquire_locks(
    control: sa.Engine, request_id: int, keys: Collection[str], *, wait_seconds: float, stale_after: dt.timedelta
) -> None:
    """Take all keys or none (one transaction, so two requests never deadlock); wait up to `wait_seconds`.

    Locks older than `stale_after` are taken over: they belong to a run that was killed.
    """
    owner = _owner(request_id)
    keys = sorted(set(keys))
    if not keys:
        return
    give_up = time.monotonic() + wait_seconds
    while True:
        now = dt.datetime.now(dt.UTC)
        try:
            with control.begin() as conn:
                conn.execute(
                    request_locks.delete().where(
                        request_locks.c.lock_key.in_(keys),
                        sa.or_(request_locks.c.acquired_at < now - stale_after, request_locks.c.owner == owner),
                    )
                )
                conn.execute(
                    request_locks.insert(), [{"lock_key": k, "owner": owner, "acquired_at": now} for k in keys]
                )
            return
        except sa.exc.IntegrityError:
            if time.monotonic() >= give_up:
                raise LockBusy(
                    f"request {request_id}: another request for the same person is being carried out"
                ) from None
            time.sleep(0.5)


def release_locks(control: sa.Engine, request_id: int) -> None:
    with control.begin() as conn:
        conn.execute(request_locks.delete().where(request_locks.c.owner == _owner(request_id)))


def locked_keys(control: sa.Engine) -> dict[str, str]:
    """lock key -> owner of every lock held."""
    with control.connect() as conn:
        return dict(conn.execute(sa.select(request_locks.c.lock_key, request_locks.c.owner)).all())


# --- the marketing suppression list -------------------------------------------------------------------------


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
    ensure_request_schema(control)
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


def is_suppressed(control: sa.Engine, key: Key, kind: IdentifierKind, value: str) -> bool:
    """For the newsletter's sign-up form: has this e-mail (or phone) objected to marketing? Keyed, no clear text."""
    tokens = tokens_of(key, {kind: value})
    if not tokens:
        return False
    current = load_suppressions(control)
    if tokens[0] in current.tokens:
        return True
    return bool(set(subjects_of_tokens(control, tokens).values()) & current.subjects)

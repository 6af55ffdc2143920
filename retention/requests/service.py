"""Carrying out one subject request: lease and claim it, lease the person and the sources, read, act, store the
receipt, drop the identifiers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from retention.apply.faults import fault
from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.config.requests import RequestSettings, load_request_settings
from retention.requests.access import give_access, purge_exports
from retention.requests.context import PersonRequest
from retention.requests.erasure import erase
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.model import SubjectRequest
from retention.requests.objection import NOT_FOUND, object_to_marketing, suppress
from retention.requests.person_plan import recover_killed_batches
from retention.requests.receipts import Receipt
from retention.requests.register import (
    claim_request,
    complete_request,
    fail_request,
    get_request,
    person_keys,
    requeue_request,
)
from retention.requests.restriction import restrict
from retention.requests.view import EstateView, Match, Progress, find_person, read_person
from retention.storage.engines import Estate
from retention.storage.leases import (
    Lease,
    LeaseBusy,
    acquire,
    heartbeat,
    lease_seconds,
    release,
    request_lease,
    source_lease,
    subject_lease,
)
from retention.storage.schema import ensure_schema

HANDLERS: dict[RequestKind, Callable[[PersonRequest, Receipt], Receipt]] = {
    RequestKind.ERASURE: erase,
    RequestKind.MARKETING_OBJECTION: object_to_marketing,
    RequestKind.ACCESS: give_access,
    RequestKind.RESTRICTION: restrict,
    RequestKind.LIFT_RESTRICTION: restrict,
}
"""One handler per kind of request (tests/unit/test_request_kinds.py checks that every kind has one)."""


@dataclass(frozen=True)
class RequestOutcome:
    request_id: int
    status: RequestStatus
    summary: str
    receipt: Receipt | None
    taken_over: tuple[Lease, ...] = ()
    """Leases this run took over from a run that was killed while it held them (to be reported as such)."""


def _iso(moment: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def carry_out_request(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    request_id: int,
    *,
    run_id: str,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
    finished: Callable[[str], bool] | None = None,
) -> RequestOutcome:
    """Take the request's lease, claim it, take the person's and the sources' leases, read the estate, act,
    store the receipt and drop the identifiers; every lease is let go at the end.

    A request another live run is carrying out, or one already done, is left alone; one whose run was killed
    (its lease expired, or `finished` says its run has ended) is taken over and finished. If a request for the
    same person is running, this one waits for it; if that only shows after reading the estate, the request
    goes back to the queue under a new attempt, so the sensor launches it again.
    """
    control = estate.control
    assert control is not None
    ensure_schema(control)
    settings = load_request_settings(config)
    purge_exports(settings)
    request = get_request(control, request_id)
    if request is None:
        raise ValueError(f"there is no request #{request_id}; `retention request list` shows the register")
    if request.status is RequestStatus.DONE:
        return RequestOutcome(request_id, request.status, f"request #{request_id} is done", None)
    seconds = lease_seconds()
    try:
        taken = acquire(
            control,
            [request_lease(request_id)],
            run_id,
            seconds=seconds,
            what=f"request #{request_id}",
            finished=finished,
        )
    except LeaseBusy as busy:
        return RequestOutcome(request_id, request.status, str(busy), None)
    try:
        with heartbeat(control, run_id, seconds=seconds):
            outcome = _claimed(config, estate, keyring, settings, request_id, run_id, now, progress, finished)
    finally:
        release(control, run_id)
    return replace(outcome, taken_over=(*taken, *outcome.taken_over))


def _claimed(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    settings: RequestSettings,
    request_id: int,
    run_id: str,
    now: dt.datetime | None,
    progress: Progress | None,
    finished: Callable[[str], bool] | None,
) -> RequestOutcome:
    """The request under its lease: claimed, the person's and the sources' leases taken, carried out."""
    control = estate.control
    assert control is not None
    if not claim_request(control, request_id, run_id):
        request = get_request(control, request_id)
        status = request.status if request is not None else RequestStatus.DONE
        return RequestOutcome(request_id, status, f"request #{request_id} is {status.value}", None)
    request = get_request(control, request_id)
    assert request is not None
    seconds = lease_seconds()
    wait = settings.lock_wait_seconds
    taken: list[Lease] = []
    try:
        people = [subject_lease(k) for k in person_keys(control, request.tokens)]
        sources = [source_lease(s) for s in config.catalog.sources]
        try:
            taken += acquire(control, people, run_id, seconds=seconds, wait_seconds=wait, what="the person")
            taken += acquire(
                control, sources, run_id, seconds=seconds, wait_seconds=wait, what="the sources", finished=finished
            )
        except LeaseBusy as busy:
            requeue_request(control, request_id, f"waited {wait} s: {busy}; queued again")
            return RequestOutcome(request_id, RequestStatus.PENDING, "queued again: person or sources busy", None)
        recover_killed_batches(config, estate, keyring, run_id=run_id)
        view = read_person(config, estate, keyring, request.tokens, progress)
        match = find_person(view, control, request, keyring, config.catalog.regions())
        extra = [subject_lease(s) for s in match.subjects]
        try:
            taken += acquire(control, extra, run_id, seconds=seconds, what="the person")
        except LeaseBusy as busy:
            requeue_request(control, request_id, f"{busy}; queued again")
            return RequestOutcome(request_id, RequestStatus.PENDING, "queued again: person busy", None)
        receipt = _act(
            config, estate, keyring, settings, request, view, match, run_id=run_id, now=now, progress=progress
        )
    except Exception as exc:
        fail_request(control, request_id, f"failed: {type(exc).__name__}; see the run's log")
        raise
    if not receipt.passed:
        fail_request(control, request_id, "verification failed after apply; see the receipt in the run's log")
        return RequestOutcome(request_id, RequestStatus.FAILED, receipt.summary, receipt, tuple(taken))
    fault("before_receipt", 1)
    receipt.completed_at = _iso(dt.datetime.now(dt.UTC), config.policy.timezone)
    complete_request(control, request_id, match.subjects, receipt.summary, receipt)
    return RequestOutcome(request_id, RequestStatus.DONE, receipt.summary, receipt, tuple(taken))


def _act(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    settings: RequestSettings,
    request: SubjectRequest,
    view: EstateView,
    match: Match,
    *,
    run_id: str,
    now: dt.datetime | None,
    progress: Progress | None,
) -> Receipt:
    tz = config.policy.timezone
    moment = now or dt.datetime.now(dt.UTC)
    receipt = Receipt(
        request=request.request_id,
        kind=request.kind,
        received_at=_iso(request.received_at, tz),
        deadline=_iso(request.deadline, tz),
        run_id=run_id,
        identifiers_given=list(request.identifier_kinds),
        matched_by=list(match.kinds_matched),
        shared_identifiers=list(match.shared),
        found=bool(match.subjects) and not match.ambiguous,
        subjects=sorted(match.subjects),
    )
    subjects = frozenset(match.subjects)
    if match.ambiguous:
        receipt.summary = (
            f"The identifiers given belong to {len(subjects)} different people in our databases, so nothing was "
            "changed or disclosed. Register a new request with the identifiers of one person."
        )
        return receipt
    person = PersonRequest(
        config, estate, keyring, settings, request, view, subjects, run_id=run_id, moment=moment, progress=progress
    )
    kind = request.kind
    if kind is RequestKind.MARKETING_OBJECTION:
        suppress(person, receipt)
    if not subjects:
        receipt.summary = "Nothing was found about this person in our databases." + (
            NOT_FOUND if kind is RequestKind.MARKETING_OBJECTION else ""
        )
        return receipt
    return HANDLERS[kind](person, receipt)

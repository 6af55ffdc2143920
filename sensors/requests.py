"""The subject-request sensor: one run per pending request, never two runs for one person at once, and no run
that was killed left as if it were still working.

Each tick reads the register and the leases in the control database. A lease that expired belongs to a run
that was killed (its process beats no more): that run is marked failed in Dagster, an alert records it, and
its leases are let go, so the batches it left pending are finished by the next apply on that source. A
request still marked running without a live lease is put back in the queue (at most a few times). Requests
whose run (this attempt) exists are skipped, and so are those whose person holds a live lease or has a run in
progress. Who a request is about is known without reading the estate: the keyed tokens stored at registration
lead to the subject keys earlier runs remembered. The daily run does not hold requests back: the two take
turns on each source through the source's lease.
"""

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from pipelines.coordination import report_takeovers
from pipelines.requests import (
    SUBJECT_REQUEST_JOB,
    TAG_ATTEMPT,
    TAG_KIND,
    TAG_REQUEST,
    TAG_SUBJECT,
    run_config_for,
)
from retention.config.problems import ConfigError
from retention.config.requests import load_request_settings
from retention.requests.access import purge_exports
from retention.requests.kinds import RequestStatus
from retention.requests.model import SubjectRequest
from retention.requests.register import fail_request, list_requests, person_keys, requeue_request
from retention.storage.engines import control_engine
from retention.storage.leases import SUBJECT_PREFIX, held, lease_seconds, release, request_lease
from retention.storage.preflight import preflight
from retention.storage.schema import ensure_schema

MAX_ATTEMPTS = 3
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def run_key(request: SubjectRequest) -> str:
    return f"request-{request.request_id}-{request.attempt}"


def build_request_sensor(catalog_path: str, policy_path: str) -> dg.SensorDefinition:
    @dg.sensor(
        name="subject_request_sensor",
        job_name=SUBJECT_REQUEST_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Launches one subject_request run per pending request in the register (run key per request and "
            "attempt); holds back a request while a run for the same person is in progress."
        ),
    )
    def subject_request_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        found = preflight(catalog_path, policy_path, databases=False)
        if found.config is None:
            return dg.SensorResult(skip_reason=str(ConfigError(found.problems)))
        config = found.config
        url = config.catalog.control_url()
        if not url:
            return dg.SensorResult(skip_reason=f"no control database; set {config.catalog.control_url_env}")
        control = control_engine(url)
        try:
            ensure_schema(control)
            purge_exports(load_request_settings(config))
            return _evaluate(context, control)
        finally:
            control.dispose()

    return subject_request_sensor


def _runs_of(instance: dg.DagsterInstance, request: SubjectRequest) -> list[dg.DagsterRun]:
    tags = {TAG_REQUEST: str(request.request_id), TAG_ATTEMPT: str(request.attempt)}
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=SUBJECT_REQUEST_JOB, tags=tags), limit=5))


def _retry_or_fail(control: sa.Engine, request: SubjectRequest, why: str) -> None:
    if request.attempt < MAX_ATTEMPTS:
        requeue_request(control, request.request_id, f"{why}; queued again")
    else:
        fail_request(control, request.request_id, f"{why} {request.attempt} times; run it with `retention request run`")


def _take_over_expired(context: dg.SensorEvaluationContext, control: sa.Engine, now: dt.datetime) -> None:
    """Let go of the leases of runs nobody has heard of for a lease's length, and report those runs killed."""
    expired = [lease for lease in held(control) if lease.expires_at <= now]
    for owner in sorted({lease.owner for lease in expired}):
        taken = [lease for lease in expired if lease.owner == owner]
        release(control, owner, [lease.name for lease in taken])
        run = context.instance.get_run_by_id(owner)
        job = run.job_name if run is not None else SUBJECT_REQUEST_JOB
        for alert in report_takeovers(context.instance, control, taken, by="the subject_request_sensor", job_name=job):
            context.log.warning(alert.text())


def _fail_silent_runs(context: dg.SensorEvaluationContext, owners: set[str], now: dt.datetime) -> None:
    """Mark failed the request runs that started long ago and hold no lease: killed before they took one (a run
    takes its request's lease within seconds of starting), they would otherwise hold their person back."""
    silent_after = dt.timedelta(seconds=3 * lease_seconds())
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=SUBJECT_REQUEST_JOB, statuses=[dg.DagsterRunStatus.STARTED])
    )
    for record in records:
        started = record.start_time
        if record.dagster_run.run_id in owners or started is None:
            continue
        if now - dt.datetime.fromtimestamp(started, dt.UTC) > silent_after:
            context.instance.report_run_failed(
                record.dagster_run,
                message=f"started {silent_after.seconds} s ago and never took its request's lease: taken to be killed",
            )


def _evaluate(context: dg.SensorEvaluationContext, control: sa.Engine) -> dg.SensorResult:
    instance = context.instance
    now = dt.datetime.now(dt.UTC)
    _take_over_expired(context, control, now)
    running = list_requests(control, [RequestStatus.RUNNING])
    live = held(control)
    names = {lease.name for lease in live}
    for request in running:
        if request_lease(request.request_id) not in names:
            _retry_or_fail(control, request, "its run ended or was killed before the request was finished")
    _fail_silent_runs(context, {lease.owner for lease in live}, now)
    busy = {name.removeprefix(SUBJECT_PREFIX) for name in names if name.startswith(SUBJECT_PREFIX)}
    pending = list_requests(control, [RequestStatus.PENDING])
    waiting: list[SubjectRequest] = []
    for request in pending:
        runs = _runs_of(instance, request)
        if any(r.status in IN_PROGRESS for r in runs):
            busy.update(person_keys(control, request.tokens))
        elif runs:
            _retry_or_fail(control, request, "the run ended before it took the request")
        else:
            waiting.append(request)
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=SUBJECT_REQUEST_JOB, statuses=IN_PROGRESS)):
        subject = run.tags.get(TAG_SUBJECT)
        if subject:
            busy.update(subject.split(","))
    launches: list[dg.RunRequest] = []
    held_back = 0
    for request in waiting:
        keys = person_keys(control, request.tokens)
        if busy.intersection(keys):
            held_back += 1
            continue
        busy.update(keys)
        launches.append(
            dg.RunRequest(
                run_key=run_key(request),
                run_config=run_config_for(request.request_id),
                tags={
                    TAG_REQUEST: str(request.request_id),
                    TAG_ATTEMPT: str(request.attempt),
                    TAG_KIND: request.kind.value,
                    TAG_SUBJECT: ",".join(keys),
                },
            )
        )
    if held_back:
        context.log.info(f"{held_back} requests wait for a run for the same person to finish")
    if not launches:
        reason = f"{held_back} requests wait for their person's run to finish" if held_back else "no pending requests"
        return dg.SensorResult(skip_reason=reason)
    return dg.SensorResult(run_requests=launches)

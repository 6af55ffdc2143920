"""The subject-request sensor: one run per pending request, never two runs for one person at once.

Each tick reads the register in the control database, skips requests whose run (this attempt) exists, and
skips requests whose person already has a run in progress or holds a request lock (a run from the launchpad
or the CLI). Who a request is about is known without reading the estate: the keyed tokens stored at
registration lead to the subject keys earlier runs remembered. Runs that ended without finishing their
request (a killed process) are put back in the queue, at most a few times. While the daily run is in progress
nothing is launched, so the two never write to the same rows at once.
"""

import dagster as dg
import sqlalchemy as sa

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
from retention.requests.locks import locked_keys
from retention.requests.model import SubjectRequest
from retention.requests.register import fail_request, list_requests, person_keys, requeue_request
from retention.storage.engines import control_engine
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
ENDED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def run_key(request: SubjectRequest) -> str:
    return f"request-{request.request_id}-{request.attempt}"


def build_request_sensor(catalog_path: str, policy_path: str, daily_job: str) -> dg.SensorDefinition:
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
            return _evaluate(context, control, daily_job)
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


def _evaluate(context: dg.SensorEvaluationContext, control: sa.Engine, daily_job: str) -> dg.SensorResult:
    instance = context.instance
    if instance.get_runs(filters=dg.RunsFilter(job_name=daily_job, statuses=IN_PROGRESS), limit=1):
        return dg.SensorResult(skip_reason="the daily run is in progress; requests wait until it has finished")
    for request in list_requests(control, [RequestStatus.RUNNING]):
        run = instance.get_run_by_id(request.run_id) if request.run_id else None
        if run is not None and run.status in ENDED:
            _retry_or_fail(control, request, "the run ended before the request was finished")
    busy: set[str] = set(locked_keys(control))
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

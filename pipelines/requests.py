"""The `subject_request` job: one run carries out one registered subject request.

All three ways in end here: the sensor launches it for each pending request, support staff launch it from
the Dagster launchpad with the request id as run config, and `retention request ... --now` runs it in-process
on the local instance. Tags name the request and the person's key, so the sensor can keep runs for one person
apart; nothing the run logs or stores holds an identifier.
"""

import dagster as dg
from pydantic import Field

from pipelines.coordination import report_takeovers, run_ended
from pipelines.resources import EstateResource
from retention.requests.kinds import RequestStatus
from retention.requests.receipts import Receipt
from retention.requests.service import carry_out_request

SUBJECT_REQUEST_JOB = "subject_request"
REQUEST_OP = "carry_out_subject_request"
TAG_REQUEST = "retention/request"
TAG_ATTEMPT = "retention/attempt"
TAG_SUBJECT = "retention/subject"
TAG_KIND = "retention/kind"


class SubjectRequestConfig(dg.Config):
    request_id: int = Field(description="the request's number, as `retention request list` shows it")


def run_config_for(request_id: int) -> dict[str, object]:
    return {"ops": {REQUEST_OP: {"config": {"request_id": request_id}}}}


def _tables_markdown(receipt: Receipt) -> str:
    lines = ["| source | table | found | deleted | pseudonymised | kept |", "|---|---|---:|---:|---:|---:|"]
    lines += [
        f"| {t.source} | {t.table} | {t.rows_found} | {t.deleted} | {t.pseudonymised} | {t.kept_rows} |"
        for t in receipt.tables
    ]
    return "\n".join(lines)


@dg.op(
    name=REQUEST_OP,
    description=(
        "Finds the person by the keyed tokens of the identifiers given, carries out the request (erasure, "
        "marketing objection, access export, restriction or its lifting) with the daily run's applier and "
        "ledger, and stores the receipt in the register."
    ),
)
def carry_out_subject_request(
    context: dg.OpExecutionContext, config: SubjectRequestConfig, estate: EstateResource
) -> dg.Output[dict]:
    outcome = carry_out_request(
        estate.config,
        estate.estate,
        estate.keyring,
        config.request_id,
        run_id=context.run_id,
        progress=context.log.info,
        finished=lambda owner: run_ended(context.instance, owner),
    )
    if outcome.taken_over:
        assert estate.estate.control is not None
        for alert in report_takeovers(
            context.instance,
            estate.estate.control,
            list(outcome.taken_over),
            by=context.run_id,
            job_name=SUBJECT_REQUEST_JOB,
        ):
            context.log.warning(alert.text())
    receipt = outcome.receipt
    metadata: dict[str, dg.MetadataValue] = {
        "request": dg.MetadataValue.int(outcome.request_id),
        "status": dg.MetadataValue.text(outcome.status.value),
        "summary": dg.MetadataValue.text(outcome.summary),
    }
    if receipt is not None:
        metadata["kind"] = dg.MetadataValue.text(receipt.kind.value)
        metadata["tables"] = dg.MetadataValue.md(_tables_markdown(receipt))
    context.log.info(f"request {outcome.request_id}: {outcome.status.value}: {outcome.summary}")
    if outcome.status is RequestStatus.FAILED:
        raise dg.Failure(description=f"request {outcome.request_id} failed: {outcome.summary}", metadata=metadata)
    return dg.Output(receipt.document() if receipt is not None else {}, metadata=metadata)


@dg.job(
    name=SUBJECT_REQUEST_JOB,
    description=(
        "Carries out one subject request from the register. In the launchpad, give the request id: "
        "ops: {carry_out_subject_request: {config: {request_id: 12}}}."
    ),
)
def subject_request_job() -> None:
    carry_out_subject_request()

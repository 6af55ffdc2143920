"""The subject-request sensor and job: one run per pending request, none twice, never two for one person at once.

The daemon is played by the test: each run request the sensor returns becomes a queued run in the instance,
exactly what the daemon would create, and is then carried out by the real `subject_request` job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines.requests import TAG_ATTEMPT, TAG_REQUEST, TAG_SUBJECT, run_config_for, subject_request_job
from pipelines.resources import EstateResource
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.register import claim_request
from sensors.requests import build_request_sensor
from tests.databases import server_databases
from tests.requests_support import (
    CATALOG,
    POLICY,
    DemoEstate,
    customer_identifiers,
    demo_estate,
    rows_of,
    stored_request,
)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoEstate]:
    with server_databases("sqlite", tmp_path) as dbs:
        yield demo_estate(monkeypatch, dbs, tmp_path, people=40, seed=5)


def _definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[subject_request_job],
        sensors=[build_request_sensor(str(CATALOG), str(POLICY))],
        resources={"estate": EstateResource(catalog_path=str(CATALOG), policy_path=str(POLICY))},
    )


def _evaluate(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def("subject_request_sensor")
    result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or [])


def _queue(defs: dg.Definitions, instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> list[dg.DagsterRun]:
    """What the daemon does with a run request: a run, not started yet, with its config and tags."""
    job = defs.resolve_job_def("subject_request")
    runs = []
    for r in requests:
        assert r.run_key is not None, "the sensor gives every run request a run key"
        runs.append(
            instance.create_run_for_job(
                job,
                run_config=r.run_config,
                tags={**r.tags, "dagster/run_key": r.run_key},
                status=dg.DagsterRunStatus.NOT_STARTED,
            )
        )
    return runs


def _execute(defs: dg.Definitions, instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """Carry out a queued run: the daemon's launcher, played by executing the same job with the same tags."""
    instance.delete_run(run.run_id)
    result = defs.resolve_job_def("subject_request").execute_in_process(
        run_config=run.run_config, instance=instance, tags=run.tags
    )
    assert result.success


def test_one_run_per_request_and_never_two_for_one_person(demo: DemoEstate) -> None:
    view = demo.view()  # the index remembers every token, so e-mail and phone lead to the same person
    customers = view.tagged[("enrolment", "customers")].frame
    people = sorted(set(customers["subject"]))
    with_phone = []
    for subject in people:
        ids = customer_identifiers(demo.urls["enrolment"], rows_of(view, {subject})[("enrolment", "customers")])
        if "email" in ids and "phone" in ids:
            with_phone.append(ids)
        if len(with_phone) == 2:
            break
    p, q = with_phone
    first = demo.register(RequestKind.ACCESS, email=p["email"])
    second = demo.register(RequestKind.RESTRICTION, phone=p["phone"])  # the same person, another identifier
    third = demo.register(RequestKind.ACCESS, email=q["email"])
    defs = _definitions()
    with dg.instance_for_test() as instance:
        launched = _evaluate(defs, instance)
        assert [r.tags[TAG_REQUEST] for r in launched] == [str(first), str(third)]
        assert len({r.run_key for r in launched}) == 2
        assert launched[0].run_config == run_config_for(first)
        assert all(r.tags[TAG_ATTEMPT] == "1" and r.tags[TAG_SUBJECT].startswith("s_") for r in launched)
        queued = _queue(defs, instance, launched)
        assert _evaluate(defs, instance) == [], "a second evaluation launches nothing"
        for run in queued:
            _execute(defs, instance, run)
        engine = sa.create_engine(demo.control_url)
        try:
            assert stored_request(engine, first).status is RequestStatus.DONE
            assert stored_request(engine, second).status is RequestStatus.PENDING
        finally:
            engine.dispose()
        # the person's first run has finished, so the second request may go now
        launched = _evaluate(defs, instance)
        assert [r.tags[TAG_REQUEST] for r in launched] == [str(second)]
        (run,) = _queue(defs, instance, launched)
        assert _evaluate(defs, instance) == []
        _execute(defs, instance, run)
        assert _evaluate(defs, instance) == []
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="subject_request"))
        assert sorted(r.tags[TAG_REQUEST] for r in runs) == sorted(str(i) for i in (first, second, third))
        assert all(r.status is dg.DagsterRunStatus.SUCCESS for r in runs)
        # no two runs for one person overlapped: the person's runs ran one after the other
        person = [r for r in runs if r.tags[TAG_REQUEST] in {str(first), str(second)}]
        spans = []
        for r in person:
            stats = instance.get_run_stats(r.run_id)
            assert stats.start_time is not None and stats.end_time is not None, "the run has finished"
            spans.append((stats.start_time, stats.end_time))
        spans.sort(key=lambda span: span[0])
        assert spans[0][1] <= spans[1][0]


def test_a_run_that_died_is_launched_again_under_a_new_run_key(demo: DemoEstate) -> None:
    request_id = demo.register(RequestKind.RESTRICTION, email="nobody@example.dk")
    defs = _definitions()
    with dg.instance_for_test() as instance:
        (launched,) = _evaluate(defs, instance)
        (run,) = _queue(defs, instance, [launched])
        engine = sa.create_engine(demo.control_url)
        try:
            assert claim_request(engine, request_id, run.run_id)
            instance.report_run_failed(run)  # the process was killed half-way: the request stays 'running'
            (again,) = _evaluate(defs, instance)
            assert again.run_key != launched.run_key and again.tags[TAG_ATTEMPT] == "2"
            request = stored_request(engine, request_id)
            assert request.status is RequestStatus.PENDING and request.attempt == 2
        finally:
            engine.dispose()


def test_launchpad_run_config_names_the_request(demo: DemoEstate) -> None:
    """The launchpad path: the job with `request_id` as run config, no sensor involved."""
    request_id = demo.register(RequestKind.ACCESS, email="ingen@example.dk")
    with dg.instance_for_test() as instance:
        result = (
            _definitions()
            .resolve_job_def("subject_request")
            .execute_in_process(run_config=run_config_for(request_id), instance=instance)
        )
    assert result.success
    engine = sa.create_engine(demo.control_url)
    try:
        request = stored_request(engine, request_id)
    finally:
        engine.dispose()
    assert request.status is RequestStatus.DONE
    assert request.receipt is not None and request.receipt.found is False
    assert request.receipt.summary == "Nothing was found about this person in our databases."

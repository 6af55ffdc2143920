"""Shared helpers of the subject-request tests: a demo estate in the environment, people to ask about, and the
databases' full content to compare before and after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from retention.config.catalog import IdentifierKind
from retention.config.keys import Keyring, load_keyring
from retention.config.loading import EstateConfig, load_config
from retention.config.requests import load_request_settings
from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES
from retention.requests.kinds import RequestKind
from retention.requests.model import SubjectRequest
from retention.requests.register import get_request, register_request
from retention.requests.service import RequestOutcome, carry_out_request
from retention.requests.view import EstateView, read_estate
from retention.storage.engines import Estate
from tests.databases import ServerDatabases
from tests.support import point_engine_at

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "config" / "catalog.yaml"
POLICY = ROOT / "config" / "policy.yaml"
ANCHOR = dt.date(2026, 3, 1)
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)  # the estate's "today" at noon: vouchers of 2021-2026 held


@dataclass
class DemoEstate:
    urls: dict[str, str]
    control_url: str
    config: EstateConfig
    keyring: Keyring

    @contextmanager
    def connect(self) -> Iterator[Estate]:
        estate = Estate.connect(self.config.catalog)
        try:
            yield estate
        finally:
            estate.dispose()

    def view(self) -> EstateView:
        with self.connect() as estate:
            return read_estate(self.config, estate, self.keyring)

    def register(self, kind: RequestKind, **identifiers: str) -> int:
        engine = sa.create_engine(self.control_url)
        try:
            return register_request(
                engine,
                self.keyring.subject,
                kind,
                {IdentifierKind(k): v for k, v in identifiers.items()},
                load_request_settings(self.config),
                self.config.policy.timezone,
                regions=self.config.catalog.regions(),
            )
        finally:
            engine.dispose()

    def carry_out(self, request_id: int, now: dt.datetime = NOW) -> RequestOutcome:
        with self.connect() as estate:
            return carry_out_request(
                self.config, estate, self.keyring, request_id, run_id=f"test-{request_id}", now=now
            )


def stored_request(control: sa.Engine, request_id: int) -> SubjectRequest:
    """The request as the control database holds it; it must be there."""
    request = get_request(control, request_id)
    assert request is not None, f"request {request_id} is not in the control database"
    return request


def demo_estate(
    monkeypatch: pytest.MonkeyPatch,
    databases: ServerDatabases,
    tmp_path: Path,
    *,
    people: int,
    seed: int,
    anchor: dt.date = ANCHOR,
) -> DemoEstate:
    """A demo estate on the test's backend, with the engine's environment pointed at it."""
    urls = {source: databases.new_url(source) for source in DEMO_SOURCES}
    generate_demo_estate(urls, people=people, seed=seed, anchor=anchor)
    control_url = databases.new_url("control")
    point_engine_at(monkeypatch, urls, control_url, tmp_path / "var")
    monkeypatch.delenv("RETENTION_REQUESTS", raising=False)
    config = load_config(CATALOG, POLICY)
    keyring, _ = load_keyring(demo=False)
    return DemoEstate(urls, control_url, config, keyring)


def contents(url: str) -> dict[str, dict[object, tuple]]:
    """Every row of every table, by primary key (the marker table of applied batches left out)."""
    engine = sa.create_engine(url)
    out: dict[str, dict[object, tuple]] = {}
    try:
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            for table in md.sorted_tables:
                if table.name == "retention_applied_batches":
                    continue
                pk = next(iter(table.primary_key.columns))
                out[table.name] = {row._mapping[pk.name]: tuple(row) for row in conn.execute(sa.select(table))}
    finally:
        engine.dispose()
    return out


def estate_contents(urls: dict[str, str]) -> dict[tuple[str, str], dict[object, tuple]]:
    return {(s, t): rows for s, url in urls.items() for t, rows in contents(url).items()}


def column_names(urls: dict[str, str]) -> dict[tuple[str, str], list[str]]:
    out = {}
    for source, url in urls.items():
        engine = sa.create_engine(url)
        try:
            md = sa.MetaData()
            md.reflect(engine)
            out.update({(source, t.name): [c.name for c in t.columns] for t in md.sorted_tables})
        finally:
            engine.dispose()
    return out


def rows_of(view: EstateView, subjects: set[str]) -> dict[tuple[str, str], set[object]]:
    """Primary keys of the subjects' rows, per table, as the subject index sees them."""
    out = {}
    for tid in view.tagged:
        rows = view.rows_of(tid, subjects)
        if not rows.empty:
            out[tid] = {pk.item() if hasattr(pk, "item") else pk for pk in rows["pk"]}
    return out


def held_vouchers(view: EstateView, subject: str, now: dt.datetime = NOW) -> int:
    frame = view.tagged[("enrolment", "invoices")].frame
    mine = frame[frame["subject"] == subject]
    return int((mine["deadline:bookkeeping"] > pd.Timestamp(now)).sum())


def customer_identifiers(url: str, subject_pks: set[object]) -> dict[str, str]:
    """E-mail, phone and customer number of one of the person's customer rows."""
    engine = sa.create_engine(url)
    try:
        customers = sa.Table("customers", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(customers.c.email, customers.c.phone, customers.c.customer_number).where(
                    customers.c.customer_id.in_(list(subject_pks))
                )
            ).first()
    finally:
        engine.dispose()
    assert row is not None
    return {k: v for k, v in zip(("email", "phone", "customer_number"), row, strict=True) if v}


def apply_day(demo: DemoEstate, day: dt.date) -> None:
    """The daily run's plan and apply for one day without Dagster: the same planner, applier and ledger."""
    from retention.apply.applier import SourceApplier
    from retention.daily.flow import compute_plan

    with demo.connect() as estate:
        plan = compute_plan(demo.config, estate, demo.keyring, day).plan
        assert estate.control is not None
        for source, engine in estate.sources.items():
            SourceApplier(
                demo.config, source, engine, estate.control, demo.keyring, run_id=f"day-{day}", as_of=day
            ).apply(plan)


def run_retention_steps(day: dt.date, *, confirm_large_plan: bool = False) -> dg.ExecuteInProcessResult:
    """The daily job for `day`, limited to its retention steps (snapshot, plan, apply, suppression) and their
    checks; the data-quality suites and the report of the full job add nothing to what these tests check."""
    from pipelines.definitions import DAILY_JOB, defs
    from pipelines.instance import local_instance

    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.groups("snapshot", "plan", "apply").resolve(graph)
    checks = {c for c in graph.asset_check_keys if c.asset_key in keys and c.name == "verified_after_apply"}
    job = defs.resolve_job_def(DAILY_JOB).get_subset(asset_selection=keys, asset_check_selection=checks)
    run_config = {"ops": {"retention_plan": {"config": {"confirm_large_plan": confirm_large_plan}}}}
    with local_instance() as instance:
        return job.execute_in_process(
            partition_key=day.isoformat(), instance=instance, run_config=run_config, raise_on_error=False
        )

"""The webshop estate run by the real engine: its own catalog, policy and request settings, its databases on the
test's backend, and the engine's environment pointed at them.

Like `tests.requests_support.demo_estate` for the demo, but every name the engine reads comes from the
webshop's catalog (`url_env`, `control_url_env`), so the tests also show that nothing assumes the demo's.
The databases are read back by plain SQL keyed by the whole primary key, composite or not.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from retention.config.catalog import IdentifierKind
from retention.config.keys import Keyring, load_keyring
from retention.config.loading import EstateConfig, load_config
from retention.config.requests import load_request_settings
from retention.daily.planning import Plan
from retention.requests.kinds import RequestKind
from retention.requests.register import register_request
from retention.requests.service import RequestOutcome, carry_out_request
from retention.requests.view import EstateView, read_estate
from retention.storage.engines import Estate
from tests.databases import ServerDatabases
from tests.support import SECRET
from tests.webshop.data import WebshopFacts, create_webshop
from tests.webshop.schema import WEBSHOP_SOURCES

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "catalog.yaml"
POLICY = HERE / "policy.yaml"
"""requests.yaml is read beside the catalog, as the engine does by default."""
ANCHOR = dt.date(2025, 6, 1)
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
"""The estate's "today" at noon, when requests are carried out."""
KEY = "k1:" + base64.b64encode(SECRET).decode()

Key = tuple[Any, ...]
Rows = dict[Key, dict[str, Any]]


@dataclass
class WebshopEstate:
    urls: dict[str, str]
    control_url: str
    config: EstateConfig
    keyring: Keyring
    facts: WebshopFacts
    env: dict[str, str]
    """The variables that point the engine at this estate, for a `retention` subprocess."""

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

    def request(self, kind: RequestKind, now: dt.datetime = NOW, **identifiers: str) -> RequestOutcome:
        """Register a request and carry it out at once."""
        return self.carry_out(self.register(kind, **identifiers), now=now)

    def plan(self, day: dt.date) -> Plan:
        from retention.daily.flow import compute_plan

        with self.connect() as estate:
            return compute_plan(self.config, estate, self.keyring, day).plan

    def apply_day(self, day: dt.date) -> None:
        """The daily run's plan and apply for one day without Dagster: the same planner, applier and ledger."""
        from retention.apply.applier import SourceApplier
        from retention.daily.flow import compute_plan

        with self.connect() as estate:
            plan = compute_plan(self.config, estate, self.keyring, day).plan
            assert estate.control is not None
            for source, engine in estate.sources.items():
                SourceApplier(
                    self.config, source, engine, estate.control, self.keyring, run_id=f"day-{day}", as_of=day
                ).apply(plan)

    def run_day(self, day: dt.date) -> dg.ExecuteInProcessResult:
        """The daily Dagster job of this estate's definitions for `day`, limited to its retention steps (snapshot,
        plan, apply, suppression) and the blocking verification after apply."""
        from pipelines.definitions import DAILY_JOB
        from pipelines.instance import local_instance

        defs = _definitions(self.config.catalog_file, self.config.policy_file)
        graph = defs.resolve_asset_graph()
        keys = dg.AssetSelection.groups("snapshot", "plan", "apply").resolve(graph)
        checks = {c for c in graph.asset_check_keys if c.asset_key in keys and c.name == "verified_after_apply"}
        job = defs.resolve_job_def(DAILY_JOB).get_subset(asset_selection=keys, asset_check_selection=checks)
        run_config = {"ops": {"retention_plan": {"config": {"confirm_large_plan": True}}}}
        with local_instance() as instance:
            return job.execute_in_process(
                partition_key=day.isoformat(), instance=instance, run_config=run_config, raise_on_error=False
            )

    def rows(self, source: str, table: str) -> Rows:
        return table_rows(self.urls[source], table)

    def contents(self) -> dict[tuple[str, str], Rows]:
        return {(source, table): rows for source, url in self.urls.items() for table, rows in contents(url).items()}


@cache
def _definitions(catalog_path: str, policy_path: str) -> dg.Definitions:
    from pipelines.definitions import build_definitions

    return build_definitions(catalog_path, policy_path)


def engine_environment(urls: Mapping[str, str], control_url: str, var: Path) -> dict[str, str]:
    """What a run of the engine on the webshop needs in its environment, by the catalog's own variable names."""
    config = load_config(CATALOG, POLICY)
    env = {config.catalog.sources[source].url_env: url for source, url in urls.items()}
    env |= {
        config.catalog.control_url_env: control_url,
        "RETENTION_CATALOG": str(CATALOG),
        "RETENTION_POLICY": str(POLICY),
        "RETENTION_KEY": KEY,
        "RETENTION_VAR": str(var),
        "DAGSTER_HOME": str(var / "dagster"),
    }
    return env


def new_webshop(databases: ServerDatabases, var: Path, *, label: str = "ws", seed: int = 11) -> dict[str, str]:
    """Build a webshop in fresh databases of `databases` and return the engine environment for it."""
    urls = {source: databases.new_url(f"{label}_{source}") for source in WEBSHOP_SOURCES}
    create_webshop(urls, anchor=ANCHOR, seed=seed)
    return engine_environment(urls, databases.new_url(f"{label}_control"), var)


def webshop_estate(
    monkeypatch: pytest.MonkeyPatch, databases: ServerDatabases, tmp_path: Path, *, seed: int = 11
) -> WebshopEstate:
    """A webshop estate on the test's backend, with the engine's environment pointed at it."""
    urls = {source: databases.new_url(f"webshop_{source}") for source in WEBSHOP_SOURCES}
    facts = create_webshop(urls, anchor=ANCHOR, seed=seed)
    control_url = databases.new_url("webshop_control")
    env = engine_environment(urls, control_url, tmp_path / "var")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("RETENTION_REQUESTS", "RETENTION_KEY_FILE", "RETENTION_CONTROL_URL"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(CATALOG, POLICY)
    keyring, _ = load_keyring(demo=False)
    return WebshopEstate(urls, control_url, config, keyring, facts, env)


def table_rows(url: str, table: str) -> Rows:
    """Every row of one table by plain SQL, keyed by its whole primary key (a tuple, also for one column)."""
    return contents(url, only=table)[table]


def contents(url: str, only: str | None = None) -> dict[str, Rows]:
    """Every row of every table (or of `only`), keyed by primary key; the marker table of applied batches left
    out, since its batch ids differ by design."""
    engine = sa.create_engine(url)
    out: dict[str, Rows] = {}
    try:
        md = sa.MetaData()
        md.reflect(engine, only=[only] if only else None)
        with engine.connect() as conn:
            for table in md.sorted_tables:
                if table.name == "retention_applied_batches":
                    continue
                pk = [c.name for c in table.primary_key.columns]
                out[table.name] = {
                    tuple(row[c] for c in pk): dict(row) for row in conn.execute(sa.select(table)).mappings()
                }
    finally:
        engine.dispose()
    return out


def scalar(url: str, sql: str, **params: object) -> Any:
    """One value by plain SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


# The policy's calendar written out independently of the engine, for checks by plain SQL and Python.


def plus_months(moment: dt.datetime, months: int) -> dt.datetime:
    """`moment` so many calendar months later, its day cut to the last of a shorter month."""
    year, index = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    last = calendar.monthrange(year, index + 1)[1]
    return moment.replace(year=year, month=index + 1, day=min(moment.day, last))


def financial_year_end(day: dt.date) -> dt.date:
    """The end (31 March, as policy.yaml says) of the financial year `day` belongs to."""
    end = dt.date(day.year, 3, 31)
    return end if day <= end else dt.date(day.year + 1, 3, 31)


def end_of_day(day: dt.date) -> dt.datetime:
    """The naive local moment at which the as-of day ends (the engine plans what is due by then)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def as_moment(value: object, fmt: str | None = None) -> dt.datetime:
    """A date, datetime or text date of the estate as a naive datetime."""
    if isinstance(value, str):
        assert fmt is not None, f"a text date needs its format: {value!r}"
        return dt.datetime.strptime(value, fmt)
    if isinstance(value, dt.datetime):
        return value
    assert isinstance(value, dt.date), value
    return dt.datetime.combine(value, dt.time())


MARGIN = dt.timedelta(days=2)
"""Rows whose deadline lies this close to the end of the day are not judged: time zones and the engine's
exact comparison at the boundary are the unit tests' business, not these."""


def judged(deadline: dt.datetime, day: dt.date) -> bool | None:
    """True when the deadline has clearly passed by the end of `day`, False when it clearly has not, None when it
    is too close to call."""
    end = end_of_day(day)
    if deadline < end - MARGIN:
        return True
    if deadline > end + MARGIN:
        return False
    return None

"""What the code location tells the Dagster UI before any run: owners and tags of each source's assets from the
catalog, the column schema of a snapshot, the schedule (stopped until turned on, the day that has just ended)
and partitions from the policy's first day; and the catalog and policy refuse what Dagster would not take,
naming the entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.snapshots import COLUMN_SCHEMA, column_schema, snapshot_asset_key
from pipelines.definitions import DAILY_JOB, build_definitions
from pipelines.partitions import MISSING_PARTITIONS
from retention.config.loading import load_config
from retention.config.problems import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "config" / "catalog.yaml"
POLICY = ROOT / "config" / "policy.yaml"
WEBSHOP = ROOT / "tests" / "webshop"


def edited(tmp_path: Path, original: Path, change: dict[str, object]) -> Path:
    """A copy of a shipped file with dotted paths set to new values (requests.yaml beside it, as shipped)."""
    doc = yaml.safe_load(original.read_text(encoding="utf-8"))
    for path, value in change.items():
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[part]
        node[last] = value
    target = tmp_path / original.name
    target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (tmp_path / "requests.yaml").write_bytes((original.parent / "requests.yaml").read_bytes())
    return target


def repository(defs: dg.Definitions) -> dg.RepositoryDefinition:
    return defs.get_repository_def()


def problems(catalog: Path, policy: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_config(catalog, policy)
    return {p.entry: f"{p.message} / {p.fix}" for p in caught.value.problems}


def test_each_source_s_assets_carry_the_catalog_s_owner_and_tags() -> None:
    defs = build_definitions(str(CATALOG), str(POLICY))
    graph = defs.resolve_asset_graph()
    catalog = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    for source, entry in catalog["sources"].items():
        for stage in ("snapshot", "apply", "source_schema"):
            node = graph.get(dg.AssetKey([stage, source]))
            assert list(node.owners) == [entry["owner"]], (stage, source)
            assert {k: v for k, v in node.tags.items() if not k.startswith("dagster/")} == entry["tags"]
    plan = graph.get(dg.AssetKey(["retention_plan"]))
    assert list(plan.owners) == [] and not [k for k in plan.tags if not k.startswith("dagster/")]


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("owner", "the marketing people", "'the marketing people' is not an owner Dagster accepts"),
        ("owner", "team:", "'team:' is not an owner Dagster accepts"),
        ("tags", {"cost centre": "x"}, "the tag key 'cost centre' is not one Dagster accepts"),
        ("tags", {"dagster/kind": "x"}, "the tag key 'dagster/kind' is not one Dagster accepts"),
        ("tags", {"domain": "e-mail & sms"}, "the value of tag 'domain' is not one Dagster accepts"),
    ],
)
def test_an_owner_or_tag_dagster_would_refuse_is_a_problem_naming_the_entry(
    tmp_path: Path, field: str, value: object, said: str
) -> None:
    catalog = edited(tmp_path, CATALOG, {f"sources.newsletter.{field}": value})
    found = problems(catalog, POLICY)
    assert list(found) == [f"sources.newsletter.{field}"]
    assert found[f"sources.newsletter.{field}"].startswith(said)


def test_an_e_mail_owner_loads_and_a_catalog_without_owners_still_does(tmp_path: Path) -> None:
    catalog = edited(tmp_path, CATALOG, {"sources.newsletter.owner": "dpo@example.com", "sources.newsletter.tags": {}})
    assert load_config(catalog, POLICY).catalog.sources["newsletter"].owner == "dpo@example.com"
    webshop = load_config(WEBSHOP / "catalog.yaml", WEBSHOP / "policy.yaml").catalog
    assert all(src.owner is None and src.tags == {} for src in webshop.sources.values())


def test_the_column_schema_is_the_catalog_s_columns_with_categories_as_tags() -> None:
    config = load_config(WEBSHOP / "catalog.yaml", WEBSHOP / "policy.yaml")
    columns = {c.name: c for c in column_schema(config.catalog, "shop").columns}
    assert columns["customers.email"].tags == {
        "identifier": "email",
        "category": "email",
        "pii": "",
        "anonymizer": "surrogate_email",
    }
    assert columns["customers.email"].type == "text"
    # dates stored as text are text, with their format said
    assert columns["customers.created_at"].type == "text" and "%Y-%m-%d %H:%M:%S" in str(
        columns["customers.created_at"].description
    )
    assert (
        columns["customers.customer_id"].constraints.unique
        and not columns["customers.customer_id"].constraints.nullable
    )
    # a composite key: each part is a key column, not unique on its own
    for part in ("order_lines.order_id", "order_lines.line_no"):
        assert (
            columns[part].type == "key"
            and not columns[part].constraints.unique
            and not columns[part].constraints.nullable
        )
    assert columns["orders.total"].tags == {} and columns["orders.total"].type == "unknown"
    assert columns["order_lines.gift_message"].tags["category"] == "free_text"
    assert not any(name.startswith("products.") for name in columns), "a table of no personal data is not read"


def test_the_definition_shows_the_column_schema_before_any_run() -> None:
    defs = build_definitions(str(CATALOG), str(POLICY))
    node = defs.resolve_asset_graph().get(snapshot_asset_key("newsletter"))
    schema = node.metadata[COLUMN_SCHEMA].value
    assert isinstance(schema, dg.TableSchema)
    assert {c.name: c.tags.get("category") for c in schema.columns if "pii" in c.tags} == {
        "subscribers.email": "email",
        "subscribers.full_name": "name",
        "subscribers.phone": "phone",
        "subscribers.signup_ip": "ip_address",
        "events.ip": "ip_address",
        "events.user_agent": "device",
        "interest_profiles.interests": "profile",
        "interest_profiles.score": "profile",
    }


@pytest.mark.parametrize(
    ("fires_utc", "day"),
    [
        ("2026-06-14T22:30", "2026-06-14"),  # 00:30 summer time on the 15th
        ("2026-01-14T23:30", "2026-01-14"),  # 00:30 winter time on the 15th
    ],
)
def test_the_schedule_is_stopped_until_turned_on_and_asks_for_the_day_just_ended(fires_utc: str, day: str) -> None:
    resolved = repository(build_definitions(str(CATALOG), str(POLICY)))
    schedule = resolved.get_schedule_def("nightly_retention")
    assert schedule.default_status is dg.DefaultScheduleStatus.STOPPED
    assert schedule.description and MISSING_PARTITIONS in schedule.description
    assert schedule.job_name == DAILY_JOB
    when = dt.datetime.fromisoformat(fires_utc).replace(tzinfo=dt.UTC)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=resolved) as context,
    ):
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == [day]


@pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition` is deprecated")
def test_a_schedule_built_from_the_partitioned_job_would_ask_for_the_day_just_begun() -> None:
    """Why the schedule is written by hand: with today's partition in the set (end_offset=1, for `make demo`),
    the built schedule asks for today, whose deadlines have not passed yet."""
    defs = build_definitions(str(CATALOG), str(POLICY))
    job = repository(defs).get_job(DAILY_JOB)
    built = dg.build_schedule_from_partitioned_job(job, hour_of_day=0, minute_of_hour=30)
    resolved = repository(
        dg.Definitions(assets=list(defs.assets or []), jobs=[job], schedules=[built], resources=defs.resources)
    )
    when = dt.datetime(2026, 6, 14, 22, 30, tzinfo=dt.UTC)  # 00:30 on the 15th in Copenhagen
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when, repository_def=resolved) as context,
    ):
        requests = list(resolved.get_schedule_def(built.name).evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-06-15"]


def test_partitions_start_at_the_policy_s_first_day(tmp_path: Path) -> None:
    policy = edited(tmp_path, POLICY, {"first_partition_day": dt.date(2025, 3, 1)})
    job = repository(build_definitions(str(CATALOG), str(policy))).get_job(DAILY_JOB)
    assert job.partitions_def is not None
    assert job.partitions_def.get_first_partition_key() == "2025-03-01"
    assert job.description and MISSING_PARTITIONS in job.description
    assert load_config(CATALOG, POLICY).policy.first_partition_day == dt.date(2024, 1, 1)


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("2024-13-01", "'2024-13-01' is not a day / write it as YYYY-MM-DD"),
        ("yesterday", "'yesterday' is not a day / write it as YYYY-MM-DD"),
        (dt.date(1999, 12, 31), "1999-12-31 is before 2000-01-01"),
        (dt.date.today() + dt.timedelta(days=2), "is after today, so the daily job would have no partition"),
    ],
)
def test_a_first_day_that_is_no_day_or_out_of_range_is_a_problem(tmp_path: Path, value: object, said: str) -> None:
    policy = edited(tmp_path, POLICY, {"first_partition_day": value})
    found = problems(CATALOG, policy)
    assert list(found) == ["first_partition_day"] and said in found["first_partition_day"], found

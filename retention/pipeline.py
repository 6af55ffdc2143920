"""The steps of the daily run as plain functions, for the CLI and tests; the Dagster assets call the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from retention.config import EstateConfig
from retention.control import ensure_schema, load_done, load_holds
from retention.estate import Estate
from retention.keys import Keyring
from retention.planning import Plan, plan_retention
from retention.snapshot import SourceSnapshot, snapshot_source
from retention.subjects import SubjectIndex, build_subject_index
from retention.tagging import Tagged, tag_records


@dataclass
class PlanningResult:
    snapshots: dict[str, SourceSnapshot]
    index: SubjectIndex
    tagged: Tagged
    plan: Plan


def compute_plan(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    as_of: dt.date,
    *,
    progress: Callable[[str], None] | None = None,
) -> PlanningResult:
    say = progress or (lambda _msg: None)
    snapshots = {}
    for source, engine in estate.sources.items():
        say(f"snapshot {source}")
        snapshots[source] = snapshot_source(engine, config.catalog, source, keyring.subject, config.policy.timezone)
    say("subject index")
    index = build_subject_index(config.catalog, snapshots, keyring.subject)
    say("tagging")
    tagged = tag_records(config.catalog, config.policy, snapshots, index)
    say("planning")
    assert estate.control is not None
    ensure_schema(estate.control)
    plan = plan_retention(
        config.catalog, config.policy, tagged, as_of, holds=load_holds(estate.control), done=load_done(estate.control)
    )
    return PlanningResult(snapshots, index, tagged, plan)

"""The steps of the daily run as plain functions, for the CLI and tests; the Dagster assets call the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.daily.planning import Plan, plan_retention
from retention.daily.snapshot import SourceSnapshot, snapshot_source
from retention.daily.subjects import SubjectIndex, build_subject_index
from retention.daily.tagging import Tagged, tag_records
from retention.storage.control import (
    load_activity,
    load_done,
    load_holds,
    load_known_subjects,
    load_token_subjects,
    save_activity,
    save_token_subjects,
)
from retention.storage.engines import Estate
from retention.storage.schema import ensure_schema
from retention.storage.subject_index import save_subject_rows


@dataclass
class PlanningResult:
    snapshots: dict[str, SourceSnapshot]
    index: SubjectIndex
    tagged: Tagged
    plan: Plan


def index_subjects(
    config: EstateConfig,
    snapshots: Mapping[str, SourceSnapshot],
    key: Key,
    control: sa.Engine,
) -> SubjectIndex:
    """Build the subject index with what earlier runs remembered (activity, tokens, the rows the ledger changed),
    and remember what this one saw. The index keeps the ledger's rows (`SubjectIndex.changed`) for the plan."""
    ensure_schema(control)
    activity = load_activity(control)
    tokens = load_token_subjects(control)
    known = load_known_subjects(control)
    index = build_subject_index(config.catalog, snapshots, key, known, activity, tokens)
    save_activity(control, index.last_interaction, activity)
    save_token_subjects(control, index.tokens, tokens, index.ambiguous)
    taken = {
        (source, table): at
        for source, table, entry in config.catalog.tables()
        if entry.subject.identifiers and (at := snapshots[source][table].taken_at) is not None
    }
    save_subject_rows(control, {tid: index.rows[tid] for tid in taken}, taken)
    return index


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
    assert estate.control is not None
    index = index_subjects(config, snapshots, keyring.subject, estate.control)
    say("tagging")
    tagged = tag_records(config.catalog, config.policy, snapshots, index)
    say("planning")
    plan = plan_retention(
        config.catalog,
        config.policy,
        tagged,
        as_of,
        holds=load_holds(estate.control),
        done=load_done(estate.control),
        changed=index.changed,
        shared_identifiers=len(index.ambiguous),
    )
    return PlanningResult(snapshots, index, tagged, plan)

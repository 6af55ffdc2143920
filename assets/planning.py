"""Subject index, tagged records and the retention plan: steps 2 to 4 of the daily run, changing nothing."""

from collections.abc import Mapping

import dagster as dg

from assets.snapshots import snapshot_asset_key
from pipelines.resources import EstateResource
from retention.apply.faults import fault
from retention.daily.flow import index_subjects
from retention.daily.planning import Plan, check_guard, plan_retention
from retention.daily.snapshot import SourceSnapshot
from retention.daily.subjects import SubjectIndex
from retention.daily.tagging import Tagged, tag_records
from retention.reporting.plan import plan_counts
from retention.rules import columns
from retention.storage.control import load_done, load_holds
from retention.storage.schema import ensure_schema

SUBJECT_INDEX = dg.AssetKey(["subject_index"])
TAGGED_RECORDS = dg.AssetKey(["tagged_records"])
RETENTION_PLAN = dg.AssetKey(["retention_plan"])


class PlanConfig(dg.Config):
    confirm_large_plan: bool = False
    """Confirms, for this run only, a plan that touches more of a table than the policy's guard allows."""


def build_planning_assets(sources: list[str], partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    snapshot_ins = {f"snapshot_{s}": dg.AssetIn(key=snapshot_asset_key(s)) for s in sources}

    @dg.asset(
        key=SUBJECT_INDEX,
        ins=snapshot_ins,
        group_name="plan",
        partitions_def=partitions,
        kinds={"pandas"},
        description="One subject per person across the estate (keyed), with each subject's last interaction.",
    )
    def subject_index(
        context: dg.AssetExecutionContext, estate: EstateResource, **snapshots: SourceSnapshot
    ) -> dg.Output[SubjectIndex]:
        by_source = {name.removeprefix("snapshot_"): snap for name, snap in snapshots.items()}
        assert estate.estate.control is not None
        index = index_subjects(estate.config, by_source, estate.subject_key, estate.estate.control)
        in_several = int((index.subjects["sources"] > 1).sum())
        context.log.info(f"{len(index.subjects)} subjects, {in_several} in more than one database")
        return dg.Output(
            index,
            metadata={
                "subjects": dg.MetadataValue.int(len(index.subjects)),
                "subjects_in_several_databases": dg.MetadataValue.int(in_several),
                "subjects_without_interaction": dg.MetadataValue.int(
                    int(index.subjects["last_interaction"].isna().sum())
                ),
                "shared_weak_identifiers": dg.MetadataValue.int(len(index.ambiguous)),
            },
        )

    @dg.asset(
        key=TAGGED_RECORDS,
        ins={**snapshot_ins, "subject_index": dg.AssetIn(key=SUBJECT_INDEX)},
        group_name="plan",
        partitions_def=partitions,
        kinds={"pandas"},
        description="Every row with its subject, purposes, a deadline per purpose, and undated purposes.",
    )
    def tagged_records(
        context: dg.AssetExecutionContext,
        estate: EstateResource,
        subject_index: SubjectIndex,
        **snapshots: SourceSnapshot,
    ) -> dg.Output[Tagged]:
        by_source = {name.removeprefix("snapshot_"): snap for name, snap in snapshots.items()}
        tagged = tag_records(estate.config.catalog, estate.config.policy, by_source, subject_index)
        undated = {
            f"{s}.{t}": int(sum(tt.frame[columns.undated(p)].sum() for p in tt.purposes))
            for (s, t), tt in tagged.items()
        }
        return dg.Output(
            tagged,
            metadata={
                "rows": dg.MetadataValue.int(sum(len(t.frame) for t in tagged.values())),
                "rows_without_usable_date": dg.MetadataValue.json({k: v for k, v in undated.items() if v}),
            },
        )

    @dg.asset(
        key=RETENTION_PLAN,
        group_name="plan",
        partitions_def=partitions,
        kinds={"pandas"},
        description=(
            "What is due on the as-of day: rows to delete, fields to pseudonymise or clear, each with its "
            "purpose, rule, legal basis and deadline. A dry run: nothing is changed here."
        ),
    )
    def retention_plan(
        context: dg.AssetExecutionContext,
        config: PlanConfig,
        estate: EstateResource,
        tagged_records: Tagged,
        subject_index: SubjectIndex,
    ) -> dg.Output[Plan]:
        as_of = context.partition_time_window.start.date()
        control = estate.estate.control
        assert control is not None
        ensure_schema(control)
        plan = plan_retention(
            estate.config.catalog,
            estate.config.policy,
            tagged_records,
            as_of,
            holds=load_holds(control),
            done=load_done(control),
            changed=subject_index.changed,
            shared_identifiers=len(subject_index.ambiguous),
        )
        check_guard(plan, estate.config.policy, confirmed=config.confirm_large_plan)
        fault("plan", 1)
        return dg.Output(plan, metadata=plan_metadata(plan))

    return [subject_index, tagged_records, retention_plan]


PLAN_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("source", "string"),
        dg.TableColumn("table", "string"),
        dg.TableColumn("action", "string", description="delete, pseudonymise or clear"),
        dg.TableColumn("purpose", "string", description="the purpose of policy.yaml whose period has ended"),
        dg.TableColumn("rows", "int", description="planned actions"),
    ]
)


def plan_metadata(plan: Plan) -> Mapping[str, dg.MetadataValue]:
    """The plan as a table the UI shows in place, one row per source, table, action and purpose."""
    held = {f"{s}.{t}": h for (s, t), h in plan.held.items() if h}
    return {
        "as_of": dg.MetadataValue.text(plan.as_of.isoformat()),
        "planned_actions": dg.MetadataValue.int(plan.total()),
        "plan_table": dg.MetadataValue.table(
            [dg.TableRecord(row) for row in plan_counts(plan)], schema=PLAN_TABLE_SCHEMA
        ),
        "held_rows": dg.MetadataValue.json(held),
    }

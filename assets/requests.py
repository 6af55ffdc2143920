"""The daily run's part of subject requests: honour the marketing suppression list, and remove access exports
past their keeping time (they hold personal data in clear), whether or not any request ran that day.

After the day's apply steps, marketing rows (tables whose purposes are all marketing purposes in
`requests.yaml`) of people who objected to marketing are deleted if they came back: a new newsletter sign-up
with the same e-mail, a restored backup. Same applier, ledger and verification as the apply step.
"""

import datetime as dt

import dagster as dg

from assets.applying import apply_asset_key
from pipelines.resources import EstateResource
from retention.config.requests import load_request_settings
from retention.requests.access import purge_exports
from retention.requests.person_plan import apply_person_plan, table_receipts
from retention.requests.suppression import load_suppressions, plan_suppression
from retention.requests.view import read_person
from retention.storage.control import load_done, load_holds, load_known_subjects

MARKETING_SUPPRESSION = dg.AssetKey(["marketing_suppression"])
EXPIRED_EXPORTS = dg.AssetKey(["expired_exports_removed"])


def build_export_purge_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=EXPIRED_EXPORTS,
        group_name="apply",
        partitions_def=partitions,
        description=(
            "Removes access exports (var/exports) older than `export_keep_days` of requests.yaml: they hold a "
            "person's data in clear and are kept only for the person to fetch."
        ),
    )
    def expired_exports_removed(estate: EstateResource) -> dg.MaterializeResult:
        removed = purge_exports(load_request_settings(estate.config))
        return dg.MaterializeResult(metadata={"exports_removed": dg.MetadataValue.int(removed)})

    return expired_exports_removed


def build_suppression_asset(sources: list[str], partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=MARKETING_SUPPRESSION,
        deps=[apply_asset_key(s) for s in sources],
        group_name="apply",
        partitions_def=partitions,
        kinds={"sql"},
        description=(
            "Removes marketing rows (newsletter subscription, sends, opens and clicks, interest profile) of "
            "people on the marketing suppression list, after the day's apply steps. It reads only the listed "
            "people's rows (through the subject index), and nothing at all when the list is empty."
        ),
    )
    def marketing_suppression(context: dg.AssetExecutionContext, estate: EstateResource) -> dg.MaterializeResult:
        control = estate.estate.control
        assert control is not None
        config = estate.config
        settings = load_request_settings(config)
        suppressions = load_suppressions(control)
        listed = len(suppressions.subjects) + len(suppressions.tokens)
        nothing = {"suppression_entries": dg.MetadataValue.int(listed), "rows_removed": dg.MetadataValue.int(0)}
        if not listed or not settings.marketing_purposes:
            return dg.MaterializeResult(metadata=nothing)
        view = read_person(
            config,
            estate.estate,
            estate.keyring,
            suppressions.tokens,
            progress=context.log.debug,
            subjects=suppressions.subjects,
        )
        people = set(view.index.subjects["subject"])
        person = plan_suppression(
            config,
            view,
            suppressions,
            settings,
            dt.date.fromisoformat(context.partition_key),
            holds=load_holds(control),
            done=load_done(control, people),
            known=load_known_subjects(control, people),
        )
        if person is None or not person.plan.entries:
            return dg.MaterializeResult(metadata=nothing)
        applied = apply_person_plan(
            config, estate.estate, estate.keyring, person.plan, run_id=context.run.run_id, progress=context.log.debug
        )
        tables = table_receipts(person.decisions, applied)
        removed = sum(t.deleted for t in tables)
        cleared = sum(t.pseudonymised for t in tables)
        if applied.problems:
            raise dg.Failure(
                description="verification after removing suppressed marketing rows failed",
                metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in applied.problems))},
            )
        lines = ["| source | table | deleted | cleared |", "|---|---|---:|---:|"]
        lines += [f"| {t.source} | {t.table} | {t.deleted} | {t.pseudonymised} |" for t in tables]
        context.log.info(f"suppression list: {removed} marketing rows removed, {cleared} cleared")
        return dg.MaterializeResult(
            metadata={
                "suppression_entries": dg.MetadataValue.int(listed),
                "rows_removed": dg.MetadataValue.int(removed),
                "rows_cleared": dg.MetadataValue.int(cleared),
                "tables": dg.MetadataValue.md("\n".join(lines)),
            }
        )

    return marketing_suppression

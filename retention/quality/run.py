"""The checks of one source: on its snapshot, and on its schema."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import sqlalchemy as sa

from retention.config.catalog import Catalog
from retention.config.loading import EstateConfig
from retention.daily.snapshot import SourceSnapshot
from retention.quality.checks import (
    COLUMNS_CLASSIFIED,
    COLUMNS_EXIST,
    SCHEMA_CHECKS,
    SNAPSHOT_CHECKS,
    Finding,
    QualityRun,
)
from retention.quality.flags import source_flags
from retention.quality.gx import COUNTS_ONLY, NAMES_SHOWN, run_suites
from retention.quality.suites import BOUND_PARAMETER, future_bound, schema_suite, snapshot_suites


def replaced_identifiers(control: sa.Engine, catalog: Catalog, source: str) -> dict[str, dict[str, set[str]]]:
    """Per table and identifier column, the keys of rows whose identifier the ledger says the engine replaced.

    Only tables that link to people by identifiers are asked for, and only the ledger's kept rows.
    """
    from retention.storage.schema import ensure_schema, ledger

    tables = {t: set(e.subject.identifiers.values()) for t, e in catalog.sources[source].tables.items()}
    tables = {t: cols for t, cols in tables.items() if cols}
    if not tables:
        return {}
    ensure_schema(control)
    query = sa.select(ledger.c.table_name, ledger.c.pk, ledger.c.fields).where(
        ledger.c.source == source, ledger.c.action != "delete", ledger.c.table_name.in_(sorted(tables))
    )
    out: dict[str, dict[str, set[str]]] = {}
    with control.connect() as conn:
        for table, pk, fields in conn.execute(query):
            for column in tables[table] & set(fields.split(",")):
                out.setdefault(table, {}).setdefault(column, set()).add(str(pk))
    return out


def check_snapshot(
    config: EstateConfig,
    source: str,
    snapshot: SourceSnapshot,
    engine: sa.Engine,
    as_of: dt.date,
    *,
    run_name: str,
    control: sa.Engine | None = None,
    now: dt.datetime | None = None,
) -> QualityRun:
    """Run the snapshot checks of one source: keys, future dates, parseable timestamps, identifiers, links."""
    catalog = config.catalog
    replaced = replaced_identifiers(control, catalog, source) if control is not None else {}
    flags = {}
    for table, entry in catalog.sources[source].tables.items():
        frame = snapshot[table].frame
        unread = [c for c in entry.timestamp_columns() if frame[c].isna().any()]
        flags[table] = source_flags(engine, table, entry, unread)
    bound = future_bound(as_of, config.policy.timezone, now)
    suites = snapshot_suites(catalog, source, snapshot, flags, replaced)
    parameters = {BOUND_PARAMETER: bound.isoformat()}
    return run_suites(suites, SNAPSHOT_CHECKS, f"snapshot_{source}", run_name, COUNTS_ONLY, parameters)


def check_schema(config: EstateConfig, source: str, columns: Mapping[str, list[str]], *, run_name: str) -> QualityRun:
    """Run the schema checks of one source on its reflected columns; adds which names are missing or unknown.

    Its Data Docs page is rendered by the source's snapshot checks, which run next, to save a build per source;
    a failing schema renders at once (the snapshot may not be readable then).
    """
    catalog = config.catalog
    run = run_suites(
        [schema_suite(catalog, source, columns)],
        SCHEMA_CHECKS,
        f"schema_{source}",
        run_name,
        NAMES_SHOWN,
        render=False,
    )
    present = {f"{t}.{c}" for t, cols in columns.items() for c in cols}
    named = {f"{t}.{c}" for t, e in catalog.sources[source].tables.items() for c in e.named_columns()}
    missing = sorted(named - present)
    unknown = sorted(present - named)
    for name, names in ((COLUMNS_EXIST, missing), (COLUMNS_CLASSIFIED, unknown)):
        outcome = run.outcomes[name]
        if names and outcome.findings:
            outcome.findings = [
                Finding(f.suite, f.table, f.column, f.expectation, len(names), f.rows, ", ".join(names))
                for f in outcome.findings
            ]
    return run

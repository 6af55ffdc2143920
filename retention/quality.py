"""Data-quality suites generated from the catalog, run with Great Expectations on snapshots and source schemas.

A null or duplicated key, a date in the future or a dropped column makes the plan wrong without any error, so
these suites look before the plan acts. They only ever look at value-free data: keys, keyed tokens, UTC
timestamps, booleans computed inside the source database, and column names. Every suite that touches rows
renders counts and never failing values, so the Data Docs do not become a new copy of personal data.

Great Expectations is imported inside the functions: importing it takes seconds, and only check steps need it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from retention import settings
from retention.catalog import Catalog, IdentifierKind, TableEntry
from retention.config import EstateConfig
from retention.snapshot import SourceSnapshot, TableSnapshot
from retention.timeutil import end_of_day

if TYPE_CHECKING:
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation

KEYS = "keys_present_and_unique"
FUTURE = "timestamps_not_in_future"
PARSEABLE = "timestamps_parseable"
IDENTIFIERS = "identifiers_well_formed"
FOREIGN_KEYS = "foreign_keys_resolve"
COLUMNS_EXIST = "classified_columns_exist"
COLUMNS_CLASSIFIED = "columns_classified"


@dataclass(frozen=True)
class CheckDef:
    """One Dagster asset check, made of the expectations tagged with its name in every suite of a source."""

    name: str
    blocking: bool
    description: str


SNAPSHOT_CHECKS: tuple[CheckDef, ...] = (
    CheckDef(
        KEYS,
        True,
        "Every row has a primary key and no key occurs twice. Blocking: the apply step deletes and updates by "
        "key, so a duplicate key would touch a row that is not due, or a held one.",
    ),
    CheckDef(
        FUTURE,
        True,
        "No interaction or record date lies after the later of the end of the as-of day and now (15 minutes "
        "of clock skew allowed). Blocking: a future date moves deadlines and last interactions. Event columns "
        "may lie ahead (a course that ends next month).",
    ),
    CheckDef(
        PARSEABLE,
        False,
        "Every timestamp the database holds became a timestamp in the snapshot; an unreadable one would "
        "silently count as missing.",
    ),
    CheckDef(
        IDENTIFIERS,
        False,
        "At least 95% of the filled e-mails, phones and customer numbers look well-formed (judged inside the "
        "database, which returns only true or false) and gave a keyed token; a malformed one cannot link rows "
        "of the same person.",
    ),
    CheckDef(
        FOREIGN_KEYS,
        False,
        "Every parent key and declared foreign key points at a row of the snapshot; an orphan has no person "
        "and inherits no events.",
    ),
)

SCHEMA_CHECKS: tuple[CheckDef, ...] = (
    CheckDef(
        COLUMNS_EXIST,
        False,
        "Every table and column the catalog names exists in the source database (reflected, no rows read).",
    ),
    CheckDef(
        COLUMNS_CLASSIFIED,
        False,
        "Every column of a catalogued table is classified, as personal data or as not personal; an unknown "
        "column is reported, never silently ignored.",
    ),
)

IDENTIFIER_MOSTLY = 0.95
CLOCK_SKEW = dt.timedelta(minutes=15)
KEEP_DAYS = 31
"""Validation results and their Data Docs pages older than this are removed, so the docs stay small."""
INDEX_LIMIT = 120
"""The Data Docs index lists this many of the latest validations (about six daily runs); older pages stay."""
FLAG_CHUNK_ROWS = 50_000
DOCS_SITE = "retention"
BOUND_PARAMETER = "future_bound"
BOUND = {"$PARAMETER": BOUND_PARAMETER}
"""The latest believable timestamp is a run parameter, so a suite stays the same from run to run."""

# Row-level expectations render counts only: no partial list, so no failing value is ever rendered.
COUNTS_ONLY: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
# The schema suite looks at column names, which are not personal; showing them tells the reader what to fix.
NAMES_SHOWN: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 50}


def quality_dir() -> Path:
    """Great Expectations' own state (suites, validation results): runtime state, kept next to the rest."""
    return settings.var_dir() / "quality"


def data_docs_dir() -> Path:
    return settings.reports_dir() / "data-docs"


def data_docs_index() -> Path:
    return data_docs_dir() / "index.html"


@dataclass(frozen=True)
class Finding:
    """A failed expectation: where, which expectation and how many rows; never a value."""

    suite: str
    table: str
    column: str
    expectation: str
    unexpected: int
    rows: int
    detail: str = ""

    def line(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        count = f"{self.unexpected} of {self.rows} rows" if self.rows else f"{self.unexpected}"
        return f"{where}: {self.expectation} ({count}){f'; {self.detail}' if self.detail else ''}"


@dataclass
class CheckOutcome:
    check: CheckDef
    expectations: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if self.expectations == 0:
            return "nothing to check"
        if self.passed:
            return f"{self.expectations} expectation{'s' if self.expectations != 1 else ''} met"
        return (
            f"{len(self.findings)} of {self.expectations} expectations failed: "
            + "; ".join(f.line() for f in self.findings[:5])
            + (f"; and {len(self.findings) - 5} more" if len(self.findings) > 5 else "")
        )

    def markdown(self) -> str:
        if self.passed:
            return self.summary()
        lines = ["| table | column | expectation | unexpected | rows | detail |", "|---|---|---|---:|---:|---|"]
        lines += [
            f"| {f.table} | {f.column} | {f.expectation} | {f.unexpected} | {f.rows} | {f.detail} |"
            for f in self.findings
        ]
        return "\n".join(lines)


@dataclass
class QualityRun:
    """The outcome of one source's suites: one CheckOutcome per check, the suites run, where the docs are."""

    outcomes: dict[str, CheckOutcome]
    suites: list[str]
    seconds: float
    docs_index: Path | None = None

    @property
    def failed_blocking(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes.values() if o.check.blocking and not o.passed]


@dataclass
class _Suite:
    name: str
    table: str
    frame: pd.DataFrame
    expectations: list[tuple[str, Expectation]]


def future_bound(as_of: dt.date, tz: Any, now: dt.datetime | None = None) -> pd.Timestamp:
    """The latest believable moment: the end of the as-of day, or now when that is later.

    A nightly run for yesterday sees rows written after midnight, and a backfill of a past day sees today's
    rows; neither is an error. A moment after now is, give or take clock skew between servers.
    """
    now_ts = pd.Timestamp(now or dt.datetime.now(dt.UTC))
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts.tz_convert("UTC")
    return max(end_of_day(as_of, tz), now_ts) + pd.Timedelta(CLOCK_SKEW)


def _not_in_future_columns(entry: TableEntry) -> list[str]:
    """Interactions and record dates are observations of the past; events may be scheduled ahead."""
    cols = [*entry.interactions, *([entry.record_date] if entry.record_date else [])]
    return list(dict.fromkeys(cols))


def _digits(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The number of ASCII digits in a text column, in SQL every backend speaks (a digit is one byte)."""
    total: sa.ColumnElement[Any] = sa.literal(0)
    for digit in "0123456789":
        total = total + (sa.func.length(column) - sa.func.length(sa.func.replace(column, digit, "")))
    return total


def well_formed_sql(kind: IdentifierKind, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Whether an identifier looks usable, decided by the database so that no value leaves it."""
    trimmed = sa.func.trim(column)
    if kind is IdentifierKind.EMAIL:
        return sa.and_(trimmed.like("%_@_%._%"), ~column.like("%@%@%"), ~trimmed.like("% %"))
    if kind is IdentifierKind.PHONE:
        return _digits(column).between(8, 15)
    return sa.and_(trimmed != "", _digits(column) >= 1)


def source_flags(
    engine: sa.Engine, table_name: str, entry: TableEntry, filled: Iterable[str], *, chunk_rows: int = FLAG_CHUNK_ROWS
) -> pd.DataFrame | None:
    """Per row: the key, whether each timestamp column is filled, and whether each identifier is well-formed.

    Only keys and 1/0/NULL leave the database. None when there is nothing to ask.
    """
    filled = list(filled)
    identifiers = dict(entry.subject.identifiers)
    if not filled and not identifiers:
        return None
    names = [entry.pk, *filled, *identifiers.values()]
    table = sa.table(table_name, *(sa.column(n) for n in dict.fromkeys(names)))
    selected: list[sa.ColumnElement[Any]] = [table.c[entry.pk].label("pk")]
    selected += [sa.case((table.c[c].is_(None), 0), else_=1).label(f"filled:{c}") for c in filled]
    selected += [
        sa.case((table.c[col].is_(None), None), (well_formed_sql(kind, table.c[col]), 1), else_=0).label(
            f"well_formed:{kind.value}"
        )
        for kind, col in identifiers.items()
    ]
    columns = [c.name for c in selected]
    parts: list[pd.DataFrame] = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(sa.select(*selected))
        for rows in result.partitions(chunk_rows):
            parts.append(pd.DataFrame(rows, columns=columns))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _by_pk(frame: pd.Series, flags: pd.DataFrame, column: str) -> pd.Series:
    """A flag of `flags` aligned to the snapshot's rows by key (a duplicated key takes its first row)."""
    first = flags.drop_duplicates("pk").set_index("pk")[column]
    return frame.map(first)


def _tri(mask: pd.Series, known: pd.Series) -> pd.Series:
    """True/False where `known`, else None: Great Expectations skips None, so only known rows count."""
    out = pd.Series(None, index=mask.index, dtype=object)
    out[known] = mask[known].astype(bool)
    return out


def snapshot_suites(
    catalog: Catalog,
    source: str,
    snapshot: SourceSnapshot,
    flags: Mapping[str, pd.DataFrame | None],
    replaced: Mapping[str, Mapping[str, set[str]]] | None = None,
) -> list[_Suite]:
    """One suite per table, generated from the catalog; each expectation is tagged with its check's name.

    `replaced[table][column]` holds the keys (as text) of rows whose identifier the engine itself replaced by a
    pseudonym: those are not e-mails or phone numbers any more, by design, and are not judged.
    """
    import great_expectations as gx

    ex = gx.expectations
    suites = []
    pks = {table: set(snap.frame["pk"].dropna()) for table, snap in snapshot.items()}
    for table, entry in catalog.sources[source].tables.items():
        snap: TableSnapshot = snapshot[table]
        raw = snap.frame
        frame = pd.DataFrame({"pk": raw["pk"]})
        expectations: list[tuple[str, Expectation]] = [
            (KEYS, ex.ExpectColumnValuesToNotBeNull(column="pk")),
            (KEYS, ex.ExpectColumnValuesToBeUnique(column="pk")),
        ]
        for col in _not_in_future_columns(entry):
            frame[col] = raw[col]
            expectations.append((FUTURE, ex.ExpectColumnValuesToBeBetween(column=col, max_value=BOUND)))
        table_flags = flags.get(table)
        if table_flags is not None:
            for col in entry.timestamp_columns():
                name = f"filled:{col}"
                if name not in table_flags.columns:
                    continue
                in_db = _by_pk(raw["pk"], table_flags, name).fillna(0).astype(int) == 1
                frame[f"parsed:{col}"] = _tri(raw[col].notna(), in_db)
                expectations.append(
                    (PARSEABLE, ex.ExpectColumnValuesToBeInSet(column=f"parsed:{col}", value_set=[True]))
                )
            for kind in entry.subject.identifiers:
                name = f"well_formed:{kind.value}"
                verdict = _by_pk(raw["pk"], table_flags, name)
                token = raw[f"id:{kind.value}"].notna()
                ours = (replaced or {}).get(table, {}).get(entry.subject.identifiers[kind], set())
                judged = verdict.notna() & ~raw["pk"].astype(str).isin(ours)
                frame[name] = _tri((verdict == 1) & token, judged)
                expectations.append(
                    (
                        IDENTIFIERS,
                        ex.ExpectColumnValuesToBeInSet(column=name, value_set=[True], mostly=IDENTIFIER_MOSTLY),
                    )
                )
        links: dict[str, tuple[pd.Series, str]] = {}
        if entry.subject.foreign_key and entry.subject.parent in pks:
            links[entry.subject.foreign_key] = (raw["fk"], entry.subject.parent)
        for ref, parent in snap.refs.items():
            col = ref.removeprefix("ref:")
            if col not in links and parent in pks:
                links[col] = (raw[ref], parent)
        for col, (values, parent) in links.items():
            frame[f"resolves:{col}"] = _tri(values.isin(pks[parent]), values.notna())
            expectations.append(
                (
                    FOREIGN_KEYS,
                    ex.ExpectColumnValuesToBeInSet(column=f"resolves:{col}", value_set=[True], meta={"parent": parent}),
                )
            )
        suites.append(_Suite(f"snapshot.{source}.{table}", table, frame, expectations))
    return suites


def named_columns(entry: TableEntry) -> list[str]:
    """Every column the catalog names for a table: key, link, timestamps, personal and not-personal columns."""
    cols = [
        *entry.primary_key,
        *([entry.subject.foreign_key] if entry.subject.foreign_key else []),
        *entry.subject.identifiers.values(),
        *entry.timestamp_columns(),
        *entry.columns,
        *entry.not_personal,
    ]
    return list(dict.fromkeys(cols))


def reflect_columns(engine: sa.Engine, tables: Iterable[str]) -> dict[str, list[str]]:
    """The columns of each catalogued table as the database has them (a missing table has none)."""
    inspector = sa.inspect(engine)
    existing = set(inspector.get_table_names())
    return {t: [c["name"] for c in inspector.get_columns(t)] if t in existing else [] for t in tables}


def schema_suite(catalog: Catalog, source: str, columns: Mapping[str, list[str]]) -> _Suite:
    import great_expectations as gx

    ex = gx.expectations
    named = sorted(f"{t}.{c}" for t, entry in catalog.sources[source].tables.items() for c in named_columns(entry))
    present = [f"{t}.{c}" for t, cols in columns.items() for c in cols]
    frame = pd.DataFrame({"column": pd.Series(present, dtype=object)})
    expectations: list[tuple[str, Expectation]] = [
        (COLUMNS_EXIST, ex.ExpectColumnDistinctValuesToContainSet(column="column", value_set=named)),
        (COLUMNS_CLASSIFIED, ex.ExpectColumnValuesToBeInSet(column="column", value_set=named)),
    ]
    return _Suite(f"schema.{source}", "all_tables", frame, expectations)


def _context() -> EphemeralDataContext:
    """An ephemeral context whose suites and results live under var/quality and whose docs go to the reports.

    Results are kept on disk so that the Data Docs index lists every source's checks of every recent run,
    although each check step builds its pages in its own context.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    state = quality_dir().resolve()
    docs = data_docs_dir().resolve()

    def on_disk(folder: str) -> dict[str, Any]:
        return {
            "class_name": "TupleFilesystemStoreBackend",
            "root_directory": str(state),
            "base_directory": folder,
            "suppress_store_backend_id": True,
        }

    defaults = InMemoryStoreBackendDefaults()
    stores = defaults.stores
    stores[defaults.expectations_store_name]["store_backend"] = on_disk("expectations")
    stores[defaults.validation_results_store_name]["store_backend"] = on_disk("validations")
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": INDEX_LIMIT,
                },
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _run_suites(
    suites: list[_Suite],
    checks: tuple[CheckDef, ...],
    datasource: str,
    run_name: str,
    result_format: dict[str, Any],
    parameters: dict[str, Any] | None = None,
    *,
    render: bool = True,
) -> QualityRun:
    """Validate every suite, fold the results into one outcome per check, and build their Data Docs pages.

    Suites hold only what the catalog decides (run-dependent values such as the future bound are parameters),
    so a suite is stored and its page rendered again only when the catalog changed.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    started = time.perf_counter()
    context = _context()
    pandas_source = context.data_sources.add_pandas(datasource)
    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    outcomes = {c.name: CheckOutcome(c) for c in checks}
    changed = []
    for suite_def in suites:
        batch = pandas_source.add_dataframe_asset(suite_def.table).add_batch_definition_whole_dataframe("snapshot")
        for check, expectation in suite_def.expectations:
            expectation.meta = {**(expectation.meta or {}), "check": check}
            outcomes[check].expectations += 1
        suite = _stored_suite(context, suite_def.name, [e for _, e in suite_def.expectations])
        if suite is None:
            expectations = [e for _, e in suite_def.expectations]
            suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_def.name, expectations=expectations))
            changed.append(suite_def.name)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_def.name, data=batch, suite=suite)
        )
        result = validation.run(
            batch_parameters={"dataframe": suite_def.frame},
            expectation_parameters=parameters,
            result_format=result_format,
            run_id=run_id,
        )
        for item in result.results:
            if item.success:
                continue
            config = item.expectation_config
            details = item.result or {}
            outcomes[config.meta["check"]].findings.append(
                Finding(
                    suite=suite_def.name,
                    table=suite_def.table,
                    column=str(config.kwargs.get("column", "")),
                    expectation=config.type,
                    unexpected=int(details.get("unexpected_count") or 0),
                    rows=int(details.get("element_count") or 0),
                    detail="could not be evaluated" if _raised(item.exception_info) else "",
                )
            )
    if render or any(not o.passed for o in outcomes.values()):
        _build_docs(context, [s.name for s in suites], changed, run_id)
    index = data_docs_index()
    return QualityRun(
        outcomes, [s.name for s in suites], time.perf_counter() - started, index if index.exists() else None
    )


def _expectation_terms(configurations: Iterable[Any]) -> list[tuple[str, str, str]]:
    return sorted((c.type, repr(sorted(c.kwargs.items())), repr(c.meta)) for c in configurations)


def _stored_suite(context: Any, name: str, expectations: list[Expectation]) -> Any:
    """The stored suite when it already holds exactly these expectations, else None."""
    from great_expectations.exceptions import DataContextError

    try:
        stored = context.suites.get(name)
    except DataContextError:
        return None
    wanted = _expectation_terms(e.configuration for e in expectations)
    return stored if _expectation_terms(e.configuration for e in stored.expectations) == wanted else None


def _raised(info: Any) -> bool:
    """Whether Great Expectations failed to evaluate an expectation (its message is not shown: it may quote)."""
    if not info:
        return False
    if isinstance(info, dict):
        nested = [v for v in info.values() if isinstance(v, dict)]
        return bool(info.get("raised_exception")) or any(bool(v.get("raised_exception")) for v in nested)
    return bool(getattr(info, "raised_exception", False))


def _page(*parts: str) -> Path:
    return data_docs_dir().joinpath(*parts[:-1]) / f"{parts[-1]}.html"


def _build_docs(context: Any, suites: list[str], changed: list[str], run_id: Any) -> None:
    """Render this step's validation pages, pages still missing (a step that did not render its own), suite
    pages that changed or are missing, and the index. Results older than KEEP_DAYS are dropped first."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    prune_quality_history()
    keys = [
        k
        for k in context.validation_results_store.list_keys()
        if k.run_id.to_tuple() == run_id.to_tuple() or not _page("validations", *k.to_tuple()).exists()
    ]
    pages = [
        ExpectationSuiteIdentifier(name=s)
        for s in suites
        if s in changed or not _page("expectations", *s.split(".")).exists()
    ]
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[*keys, *pages])


def prune_quality_history(keep_days: int = KEEP_DAYS) -> int:
    """Remove validation results and their pages older than `keep_days`; returns how many files went."""
    cutoff = time.time() - keep_days * 86_400
    removed = 0
    for folder in (quality_dir() / "validations", data_docs_dir() / "validations"):
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*"), reverse=True):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            except OSError:
                continue
    return removed


def replaced_identifiers(control: sa.Engine, catalog: Catalog, source: str) -> dict[str, dict[str, set[str]]]:
    """Per table and identifier column, the keys of rows whose identifier the ledger says the engine replaced.

    Only tables that link to people by identifiers are asked for, and only the ledger's kept rows.
    """
    from retention.control import ensure_schema, ledger

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
    return _run_suites(suites, SNAPSHOT_CHECKS, f"snapshot_{source}", run_name, COUNTS_ONLY, parameters)


def check_schema(config: EstateConfig, source: str, columns: Mapping[str, list[str]], *, run_name: str) -> QualityRun:
    """Run the schema checks of one source on its reflected columns; adds which names are missing or unknown.

    Its Data Docs page is rendered by the source's snapshot checks, which run next, to save a build per source;
    a failing schema renders at once (the snapshot may not be readable then).
    """
    catalog = config.catalog
    run = _run_suites(
        [schema_suite(catalog, source, columns)],
        SCHEMA_CHECKS,
        f"schema_{source}",
        run_name,
        NAMES_SHOWN,
        render=False,
    )
    present = {f"{t}.{c}" for t, cols in columns.items() for c in cols}
    named = {f"{t}.{c}" for t, e in catalog.sources[source].tables.items() for c in named_columns(e)}
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

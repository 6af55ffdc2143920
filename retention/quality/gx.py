"""Running suites with Great Expectations, keeping its state and Data Docs under the runtime folder.

Great Expectations is imported inside the functions: importing it takes seconds, and only check steps need it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retention.config import settings
from retention.quality.checks import CheckDef, CheckOutcome, Finding, QualityRun
from retention.quality.suites import Suite

if TYPE_CHECKING:
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation


KEEP_DAYS = 31
"""Validation results and their Data Docs pages older than this are removed, so the docs stay small."""


INDEX_LIMIT = 120
"""The Data Docs index lists this many of the latest validations (about six daily runs); older pages stay."""


DOCS_SITE = "retention"


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


def _context() -> EphemeralDataContext:
    """An ephemeral context whose suites and results live under var/quality and whose docs go to the reports,
    built by `offline_docs` so that they open without the internet.

    Results are kept on disk so that the Data Docs index lists every source's checks of every recent run,
    although each check step builds its pages in its own context.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from retention.quality import offline_docs

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
        data_docs_sites={DOCS_SITE: offline_docs.site_config(docs, index_limit=INDEX_LIMIT)},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suites(
    suites: list[Suite],
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
            assert config is not None, "a validation result carries the expectation it evaluated"
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
    pages that changed or are missing (also of suites another step stored without rendering, such as the schema
    suites, which the index links to), and the index. Results older than KEEP_DAYS are dropped first."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    prune_quality_history()
    keys = [
        k
        for k in context.validation_results_store.list_keys()
        if k.run_id.to_tuple() == run_id.to_tuple() or not _page("validations", *k.to_tuple()).exists()
    ]
    stored = {k.name for k in context.expectations_store.list_keys()}
    pages = [
        ExpectationSuiteIdentifier(name=s)
        for s in sorted(stored | set(suites))
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

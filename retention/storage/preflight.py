"""The one validation pass every command, the Dagster job and the sensors run before they write anything.

Both files and each other, the request settings, the environment (every database has a URL that parses, the
control database is none of the sources) and the real databases by reflection: every problem at once, each
naming the file, the entry and the fix. `check-config` runs exactly this and prints it; everything else stops
on the first problem list instead of finding the problem half-way through a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from retention.config import settings
from retention.config.catalog import Catalog
from retention.config.database import check_against_database
from retention.config.loading import CatalogFile, EstateConfig, read_config
from retention.config.problems import ConfigError, Problem
from retention.storage.engines import EstateError, make_engine, parse_url, same_database, source_url
from retention.storage.leases import lease_seconds


@dataclass
class Preflight:
    """What the pass found: the configuration (only when there is no problem), the problems, the warnings."""

    config: EstateConfig | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def valid(self) -> EstateConfig:
        """The configuration, or ConfigError listing every problem."""
        if self.problems or self.config is None:
            raise ConfigError(self.problems)
        return self.config


def _problem(cfile: str, where: str, exc: EstateError) -> Problem:
    message, _, fix = str(exc).partition("; ")
    return Problem(cfile, where, message, fix or "correct the URL")


def environment_problems(catalog: Catalog, cfile: str, *, require_existing: bool = True) -> list[Problem]:
    """URLs that are missing or do not parse, and a control database that is one of the sources (the ledger
    and the locks would be written into a source, and `plan`, which changes nothing, would create tables)."""
    problems: list[Problem] = []
    urls: dict[str, sa.URL] = {}
    for name in catalog.sources:
        where = f"sources.{name}.url_env"
        try:
            urls[name] = source_url(catalog, name, require_existing=require_existing)
        except EstateError as exc:
            problems.append(_problem(cfile, where, exc))
    try:
        control = parse_url(catalog.control_url(), "the control database", catalog.control_url_env)
    except EstateError as exc:
        return [*problems, _problem(cfile, "control_url_env", exc)]
    for name, url in urls.items():
        if same_database(url, control):
            problems.append(
                Problem(
                    cfile,
                    "control_url_env",
                    f"the control database is the {name} source's database",
                    f"give the control database one of its own: set {catalog.control_url_env} to another database",
                )
            )
    return problems


def setting_problems() -> list[Problem]:
    """The engine's settings from the environment, each read once here so that a typo stops every command
    before it starts, with the variable named."""
    problems = []
    readers = (
        lease_seconds,
        settings.executor_name,
        lambda: settings.batch_rows(1),
        settings.output_keep_days,
        settings.run_keep_days,
    )
    for read in readers:
        try:
            read()
        except ValueError as exc:
            variable, _, rest = str(exc).partition("=")
            value, _, fix = rest.partition(": ")
            problems.append(Problem("the environment", variable, f"{value} is not a valid value", fix))
    return problems


def preflight(
    catalog_path: Path | str, policy_path: Path | str, *, key_id: str | None = None, databases: bool = True
) -> Preflight:
    """Run every check; with `databases`, reflect each source and compare it with the catalog (without, as for a
    command about to create the databases, they need not exist yet)."""
    catalog, policy, problems = read_config(catalog_path, policy_path)
    if catalog is None:
        return Preflight(None, problems)
    cfile = str(catalog_path)
    config = EstateConfig(catalog, cfile, policy, str(policy_path)) if policy is not None else None
    found = environment_problems(catalog, cfile, require_existing=databases) + setting_problems()
    problems += found
    warnings: list[Problem] = []
    if databases and not found:
        for name, source in catalog.sources.items():
            engine = make_engine(source_url(catalog, name).render_as_string(hide_password=False))
            try:
                more, warned = check_against_database(CatalogFile(catalog, cfile), name, engine, key_id=key_id)
                problems += more
                warnings += warned
            except sa.exc.DBAPIError as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
                problems.append(
                    Problem(
                        cfile,
                        f"sources.{name}",
                        f"cannot reach the {name} database ({reason})",
                        f"start it, or correct {source.url_env}",
                    )
                )
            finally:
                engine.dispose()
    return Preflight(config if not problems else None, problems, warnings)

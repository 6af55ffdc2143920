"""The settings of request handling (`requests.yaml` next to the catalog), checked against catalog and policy."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from retention.config.base import Strict
from retention.config.catalog import Catalog
from retention.config.estate import EstateConfig
from retention.config.periods import Period
from retention.config.policy import Policy
from retention.config.problems import Problem, suggest
from retention.config.yamlfile import parse

REQUESTS_FILE_ENV = "RETENTION_REQUESTS"


class RecipientTable(Strict):
    """Records of what was disclosed to whom: the recipients to tell of an erasure (Art 19)."""

    table: str = Field(description="'source.table' of the disclosure records")
    recipient: str = Field(description="column naming the recipient")
    data: str | None = Field(default=None, description="column describing what was disclosed")
    date: str | None = Field(default=None, description="column with when it was disclosed")


class RequestSettings(Strict):
    answer_within: Period = Field(default=Period(1, "months"), description="Art 12(3): one month")
    export_keep_days: int = Field(default=30, ge=1, le=366)
    lock_wait_seconds: int = Field(default=600, ge=0, le=86_400)
    recipients: list[RecipientTable] = Field(default_factory=list)
    marketing_purposes: list[str] = Field(default_factory=list)

    @field_validator("answer_within", mode="before")
    @classmethod
    def _period(cls, value: object) -> Period:
        return Period.parse(value)


class RequestSettingsError(Exception):
    """requests.yaml cannot be used; the message names the file, the entry and the fix."""


def requests_file(catalog_file: Path | str, requests_path: Path | str | None = None) -> Path:
    """The request settings' file: the one given, else RETENTION_REQUESTS, else `requests.yaml` beside the
    catalog it describes."""
    if requests_path is not None:
        return Path(requests_path)
    return Path(os.environ.get(REQUESTS_FILE_ENV) or Path(catalog_file).parent / "requests.yaml")


def settings_path(config: EstateConfig) -> Path:
    """`requests.yaml` beside the catalog it describes (or RETENTION_REQUESTS)."""
    return requests_file(config.catalog_file)


def read_request_settings(
    catalog: Catalog | None,
    policy: Policy | None,
    catalog_file: Path | str,
    requests_path: Path | str | None = None,
) -> tuple[RequestSettings | None, list[Problem]]:
    """The settings and every problem of the file and against the catalog and policy (those that parsed; the
    file's own problems are found without them). No file means the defaults; a file named by
    RETENTION_REQUESTS or `requests_path` that does not exist is a problem."""
    path = requests_file(catalog_file, requests_path)
    named = requests_path is not None or bool(os.environ.get(REQUESTS_FILE_ENV))
    if not named and not path.exists() and not path.is_symlink():
        return RequestSettings(), []
    settings, problems = parse(RequestSettings, path)
    if settings is not None:
        problems += _cross_check(settings, catalog, policy, str(path))
    return (settings if not problems else None), problems


def load_request_settings(config: EstateConfig) -> RequestSettings:
    """The settings, checked against the catalog and policy; defaults when the file does not exist."""
    settings, problems = read_request_settings(config.catalog, config.policy, config.catalog_file)
    if problems:
        raise RequestSettingsError("\n".join(f"- {p}" for p in problems))
    assert settings is not None
    return settings


def _cross_check(settings: RequestSettings, catalog: Catalog | None, policy: Policy | None, file: str) -> list[Problem]:
    problems = []
    for i, rec in enumerate(settings.recipients if catalog is not None else []):
        assert catalog is not None
        source, _, table = rec.table.partition(".")
        if source not in catalog.sources or table not in catalog.sources[source].tables:
            tables = [f"{s}.{t}" for s, t, _ in catalog.tables()]
            problems.append(
                Problem(
                    file,
                    f"recipients[{i}].table",
                    f"unknown table {rec.table!r}",
                    f"write 'source.table' naming a table of the catalog ({suggest(rec.table, tables)})",
                )
            )
            continue
        entry = catalog.table(source, table)
        known = {*entry.columns, *entry.not_personal, *entry.timestamp_columns()}
        for name in ("recipient", "data", "date"):
            column = getattr(rec, name)
            if column is not None and column not in known:
                problems.append(
                    Problem(
                        file,
                        f"recipients[{i}].{name}",
                        f"column {column!r} is not in the catalog entry of {rec.table}",
                        "name a column listed under columns, not_personal or the table's dates"
                        + (f" ({suggest(column, known)})" if known else ""),
                    )
                )
    for i, purpose in enumerate(settings.marketing_purposes if policy is not None else []):
        assert policy is not None
        if purpose not in policy.purposes:
            problems.append(
                Problem(
                    file,
                    f"marketing_purposes[{i}]",
                    f"unknown purpose {purpose!r}",
                    f"name a purpose of the policy ({suggest(purpose, policy.purposes)})",
                )
            )
    return problems

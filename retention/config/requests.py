"""The settings of request handling (`requests.yaml` next to the catalog), checked against catalog and policy."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, field_validator

from retention.config.base import Strict
from retention.config.loading import EstateConfig
from retention.config.periods import Period
from retention.config.problems import Problem

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
    lock_wait_seconds: int = Field(default=600, ge=0)
    stale_lock_hours: int = Field(default=6, ge=1)
    recipients: list[RecipientTable] = Field(default_factory=list)
    marketing_purposes: list[str] = Field(default_factory=list)

    @field_validator("answer_within", mode="before")
    @classmethod
    def _period(cls, value: object) -> Period:
        return Period.parse(value)


class RequestSettingsError(Exception):
    """requests.yaml cannot be used; the message names the file, the entry and the fix."""


def settings_path(config: EstateConfig) -> Path:
    """`requests.yaml` beside the catalog it describes (or RETENTION_REQUESTS)."""
    return Path(os.environ.get(REQUESTS_FILE_ENV) or Path(config.catalog_file).parent / "requests.yaml")


def load_request_settings(config: EstateConfig) -> RequestSettings:
    """The settings, checked against the catalog and policy; defaults when the file does not exist."""
    path = settings_path(config)
    if not path.exists():
        return RequestSettings()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        settings = RequestSettings.model_validate(data)
    except (yaml.YAMLError, ValueError) as exc:
        raise RequestSettingsError(f"{path}: {exc}") from None
    problems = _cross_check(settings, config, str(path))
    if problems:
        raise RequestSettingsError("\n".join(f"- {p}" for p in problems))
    return settings


def _cross_check(settings: RequestSettings, config: EstateConfig, file: str) -> list[Problem]:
    problems = []
    catalog = config.catalog
    for i, rec in enumerate(settings.recipients):
        source, _, table = rec.table.partition(".")
        if source not in catalog.sources or table not in catalog.sources[source].tables:
            problems.append(
                Problem(file, f"recipients[{i}].table", f"unknown table {rec.table!r}", "write 'source.table'")
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
                        "name a column listed under columns, not_personal or the table's dates",
                    )
                )
    for i, purpose in enumerate(settings.marketing_purposes):
        if purpose not in config.policy.purposes:
            problems.append(
                Problem(file, f"marketing_purposes[{i}]", f"unknown purpose {purpose!r}", "name a policy purpose")
            )
    return problems

"""The asset checks the quality suites feed, and their outcomes (counts and names, never values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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

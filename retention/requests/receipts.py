"""Receipts: what a request did, table by table, as the databases report it; as text for the person.

A receipt is typed (pydantic) and stored in the register as ASCII JSON; it holds counts, table and column
names, reasons, dates and subject keys, never an identifier or a value from the sources.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from retention.config.policy import Controller, Language
from retention.requests.kinds import KIND_TEXT, RECIPIENTS_ARTICLE, RequestKind
from retention.requests.texts import WORDS


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class KeptRows(_Part):
    """Rows kept untouched, why, and until when (the last day of the period that holds them)."""

    reason: str
    rows: int
    until: str | None = None
    why: str


class UnchangedRows(_Part):
    """Rows the request did not need to change, and why."""

    reason: str
    rows: int


class TableReceipt(_Part):
    source: str
    table: str
    rows_found: int
    deleted: int = 0
    pseudonymised: int = 0
    fields_changed: list[str] = Field(default_factory=list)
    kept: list[KeptRows] = Field(default_factory=list)
    unchanged: list[UnchangedRows] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def kept_rows(self) -> int:
        return sum(k.rows for k in self.kept)


class Recipient(_Part):
    """Someone the person's data was shared with, who must be told of an erasure or a restriction (Art 19)."""

    recipient: str
    data: list[str] = Field(default_factory=list)
    records: int
    last_shared: str | None = None


class VerificationReceipt(_Part):
    passed: bool
    problems: list[str] = Field(default_factory=list)


class RestrictionReceipt(_Part):
    placed: int | None = None
    already_in_force: int | None = Field(default=None, alias="already in force")
    lifted: int | None = None
    why: str | None = None


class SuppressionReceipt(_Part):
    entries_added: int = Field(alias="entries added")
    honoured_by: str = Field(alias="honoured by")


class ExportReceipt(_Part):
    file: str
    rows: int
    removed_on: str = Field(alias="removed on")


class Receipt(_Part):
    request: int
    kind: RequestKind
    received_at: str | None = None
    deadline: str | None = None
    completed_at: str | None = None
    run_id: str
    identifiers_given: list[str] = Field(default_factory=list)
    matched_by: list[str] = Field(default_factory=list)
    shared_identifiers: list[str] = Field(
        default_factory=list,
        description="kinds of identifiers given that several people share (a weak one, e.g. an office phone), "
        "so they were not used to find the person",
    )
    found: bool
    subjects: list[str] = Field(default_factory=list)
    tables: list[TableReceipt] = Field(default_factory=list)
    recipients: list[Recipient] = Field(default_factory=list)
    summary: str = ""
    verification: VerificationReceipt | None = None
    restriction: RestrictionReceipt | None = None
    suppression: SuppressionReceipt | None = None
    export: ExportReceipt | None = None

    @property
    def passed(self) -> bool:
        """Whether the check after apply found nothing wrong (true where nothing was applied)."""
        return self.verification is None or self.verification.passed

    @property
    def deleted(self) -> int:
        return sum(t.deleted for t in self.tables)

    @property
    def pseudonymised(self) -> int:
        return sum(t.pseudonymised for t in self.tables)

    @property
    def kept(self) -> int:
        return sum(t.kept_rows for t in self.tables)

    def document(self) -> dict[str, object]:
        """The receipt as plain JSON data, with the register's field names."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        """ASCII JSON, so any text survives any database's character set."""
        return json.dumps(self.document(), ensure_ascii=True, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Receipt:
        return cls.model_validate(json.loads(text))


def rows_text(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def receipt_text(receipt: Receipt, controller: Controller | None = None) -> str:
    """The receipt as a person reads it, ending with who answers for it and where the person may complain."""
    lines = [
        f"Receipt for request #{receipt.request}: {KIND_TEXT[receipt.kind]}",
        f"received {receipt.received_at}, answer due by {receipt.deadline}, completed {receipt.completed_at}",
        f"identifiers given: {', '.join(receipt.identifiers_given) or 'none'}"
        + (f"; matched by: {', '.join(receipt.matched_by)}" if receipt.matched_by else ""),
        *(
            [
                f"not used, because several people share them: {', '.join(receipt.shared_identifiers)}; "
                "give an identifier only this person has (e-mail, customer number) to reach their other records"
            ]
            if receipt.shared_identifiers
            else []
        ),
        "",
        receipt.summary,
    ]
    if receipt.tables:
        lines.append("")
    for t in receipt.tables:
        head = f"{t.source}.{t.table}: {rows_text(t.rows_found)} found"
        parts = []
        if t.deleted:
            parts.append(f"{t.deleted} deleted")
        if t.pseudonymised:
            parts.append(f"{t.pseudonymised} pseudonymised ({', '.join(t.fields_changed)})")
        lines.append(head + (": " + "; ".join(parts) if parts else ""))
        for k in t.kept:
            until = f" until {k.until}" if k.until else ""
            lines.append(f"    kept {k.rows}{until}: {k.why}")
        for u in t.unchanged:
            lines.append(f"    unchanged {u.rows}: {u.reason}")
        for note in t.notes:
            lines.append(f"    note: {note}")
    if receipt.recipients:
        lines += ["", f"Recipients to tell (GDPR {RECIPIENTS_ARTICLE}):"]
        for r in receipt.recipients:
            what = f" ({'; '.join(r.data)})" if r.data else ""
            when = f", last shared {r.last_shared}" if r.last_shared else ""
            lines.append(f"    {r.recipient}{what}: {r.records} record{'s' if r.records != 1 else ''}{when}")
    for name, part in (
        ("restriction", receipt.restriction),
        ("suppression", receipt.suppression),
        ("export", receipt.export),
    ):
        if part is not None:
            fields = part.model_dump(mode="json", by_alias=True, exclude_none=True)
            lines += ["", f"{name}: " + "; ".join(f"{k} {v}" for k, v in fields.items())]
    if receipt.verification is not None:
        ok = receipt.verification.passed
        lines += ["", "verification: " + ("passed" if ok else "FAILED: " + "; ".join(receipt.verification.problems))]
    if controller is not None:
        dpo = f", data protection officer {controller.dpo}" if controller.dpo else ""
        lines += [
            "",
            f"{controller.name}, contact {controller.contact}{dpo}. "
            + WORDS[Language.ENGLISH]["complaint"].format(authority=controller.authority.describe()),
        ]
    return "\n".join(lines) + "\n"

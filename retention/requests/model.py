"""What a subject request is: its kind, its status and one row of the register."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

MAX_IDENTIFIER_CHARS = 65_536
"""Longer input is refused: no identifier is that long, and the register must stay small."""


class RequestKind(StrEnum):
    ERASURE = "erasure"
    MARKETING_OBJECTION = "marketing_objection"
    ACCESS = "access"
    RESTRICTION = "restriction"
    LIFT_RESTRICTION = "lift_restriction"


class RequestStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


KIND_TEXT = {
    RequestKind.ERASURE: "erasure (Art 17)",
    RequestKind.MARKETING_OBJECTION: "objection to marketing (Art 21(2))",
    RequestKind.ACCESS: "access and portability (Art 15, 20)",
    RequestKind.RESTRICTION: "restriction (Art 18)",
    RequestKind.LIFT_RESTRICTION: "lifting a restriction (Art 18(3))",
}


@dataclass(frozen=True)
class SubjectRequest:
    """One row of the register. The raw identifiers are left out of repr, so logging a request is safe."""

    request_id: int
    kind: RequestKind
    received_at: dt.datetime
    deadline: dt.datetime
    status: RequestStatus
    attempt: int
    identifier_kinds: tuple[str, ...]
    identifiers: dict[str, str] | None = field(repr=False)
    tokens: tuple[str, ...] = field(repr=False)
    subjects: tuple[str, ...]
    run_id: str | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    outcome: str | None
    receipt: dict | None = field(repr=False)

    def overdue(self, now: dt.datetime | None = None) -> bool:
        """Past the deadline and not answered, or answered after it."""
        moment = self.completed_at or now or dt.datetime.now(dt.UTC)
        return moment > self.deadline

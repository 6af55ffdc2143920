"""One row of the register of subject requests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.receipts import Receipt

MAX_IDENTIFIER_CHARS = 65_536
"""Longer input is refused: no identifier is that long, and the register must stay small."""


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
    receipt: Receipt | None = field(repr=False)

    def overdue(self, now: dt.datetime | None = None) -> bool:
        """Past the deadline and not answered, or answered after it."""
        moment = self.completed_at or now or dt.datetime.now(dt.UTC)
        return moment > self.deadline

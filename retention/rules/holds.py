"""Holds: which rows no action may touch, and why (bookkeeping, legal claim, restriction)."""

from __future__ import annotations

from dataclasses import dataclass

HOLD_BOOKKEEPING = "bookkeeping"


HOLD_RESTRICTION = "restriction"


HOLD_LEGAL_CLAIM = "legal_claim"


@dataclass(frozen=True)
class Holds:
    """Subjects whose rows are held, by reason (restriction under Art 18, legal claim under Art 17(3)(e))."""

    restricted: frozenset[str] = frozenset()
    legal_claim: frozenset[str] = frozenset()


HOLD_WHY = {
    HOLD_BOOKKEEPING: "accounting voucher inside its bookkeeping period (bogføringsloven; GDPR Art 17(3)(b))",
    HOLD_LEGAL_CLAIM: "needed for a legal claim (GDPR Art 17(3)(e)); kept until the claim is settled",
}

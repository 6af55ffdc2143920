"""Holds: which rows no action may touch, and why. One rule for the daily plan, requests and the access export.

A voucher inside its bookkeeping period may be neither altered nor destroyed (bogføringsloven; GDPR
Art 17(3)(b)); a person's rows needed for a legal claim stay (Art 17(3)(e)); a restricted person's rows are
only stored (Art 18). The first reason that applies is the one reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from retention.config.catalog import TableId
from retention.config.policy import Policy
from retention.rules import columns
from retention.rules.clocks import expired

HOLD_BOOKKEEPING = "bookkeeping"
HOLD_LEGAL_CLAIM = "legal_claim"
HOLD_RESTRICTION = "restriction"

HOLD_WHY = {
    HOLD_BOOKKEEPING: "accounting voucher inside its bookkeeping period (bogføringsloven; GDPR Art 17(3)(b))",
    HOLD_LEGAL_CLAIM: "needed for a legal claim (GDPR Art 17(3)(e)); kept until the claim is settled",
    HOLD_RESTRICTION: "restricted: stored only (Art 18)",
}


@dataclass(frozen=True)
class Holds:
    """Subjects whose rows are held, by reason (restriction under Art 18, legal claim under Art 17(3)(e))."""

    restricted: frozenset[str] = frozenset()
    legal_claim: frozenset[str] = frozenset()

    def without_restrictions(self) -> Holds:
        """The holds a request of the person meets: their own erasure or objection supersedes a restriction."""
        return dataclasses.replace(self, restricted=frozenset())


def is_voucher_table(table: TableId, purposes: tuple[str, ...] | list[str], policy: Policy) -> bool:
    """Rows of the table are accounting vouchers: it is under the bookkeeping hold and serves its purpose."""
    hold = policy.bookkeeping_hold
    return f"{table[0]}.{table[1]}" in hold.tables and hold.purpose in purposes


def hold_reasons(
    rows: pd.DataFrame,
    table: TableId,
    purposes: tuple[str, ...] | list[str],
    policy: Policy,
    holds: Holds,
    moment: pd.Timestamp,
) -> pd.Series:
    """Per row of a tagged frame the reason it is held at `moment`, or '' where nothing holds it.

    A voucher is held until its bookkeeping deadline has passed, and also while it has none (no usable date
    is never taken to mean the period is over)."""
    held = pd.Series("", index=rows.index, dtype=object)
    if is_voucher_table(table, purposes, policy):
        bookkeeping = policy.bookkeeping_hold.purpose
        held[~expired(rows[columns.deadline(bookkeeping)], moment)] = HOLD_BOOKKEEPING
    held[(held == "") & rows[columns.SUBJECT].isin(holds.legal_claim)] = HOLD_LEGAL_CLAIM
    held[(held == "") & rows[columns.SUBJECT].isin(holds.restricted)] = HOLD_RESTRICTION
    return held

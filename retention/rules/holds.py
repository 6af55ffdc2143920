"""Holds: which rows no action may touch, and why. One rule for the daily plan, requests and the access export.

A voucher inside its bookkeeping period may be neither altered nor destroyed (the bookkeeping law the policy's
bookkeeping purpose names; GDPR Art 17(3)(b)); a person's rows needed for a legal claim stay (Art 17(3)(e)); a
restricted person's rows are only stored (Art 18). The first reason that applies is the one reported. A row
that references a held row (an invoice's lines, a held order's shipments) is part of what is held and is held
with it, for the same reason, all the way down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from retention.config.catalog import TableId
from retention.config.policy import Policy
from retention.rules import columns
from retention.rules.calendar import UTC_DTYPE, as_utc
from retention.rules.clocks import expired
from retention.rules.references import Referencing, children_first

HOLD_BOOKKEEPING = "bookkeeping"
HOLD_LEGAL_CLAIM = "legal_claim"
HOLD_RESTRICTION = "restriction"

HOLD_WHY = {
    HOLD_LEGAL_CLAIM: "needed for a legal claim (GDPR Art 17(3)(e)); kept until the claim is settled",
    HOLD_RESTRICTION: "restricted: stored only (Art 18)",
}


def hold_why(reason: str, policy: Policy) -> str:
    """Why rows are held, in words for a receipt; a voucher cites the law the policy gives for bookkeeping, so an
    estate under another country's law is not told of Danish law."""
    if reason == HOLD_BOOKKEEPING:
        basis = policy.purposes[policy.bookkeeping_hold.purpose].legal_basis
        return f"accounting voucher inside its bookkeeping period ({basis}; GDPR Art 17(3)(b))"
    return HOLD_WHY[reason]


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


class Holdable(Referencing, Protocol):
    """A tagged table as the hold rule sees it: its frame, references and purposes."""

    @property
    def purposes(self) -> tuple[str, ...]: ...


def held_rows(
    tables: Mapping[TableId, Holdable], policy: Policy, holds: Holds, moment: pd.Timestamp
) -> dict[TableId, pd.DataFrame]:
    """Per table, aligned with its frame: `reason`, why each row is held at `moment` ('' where nothing holds
    it), and `until`, the deadline of the bookkeeping period that holds it (NaT for other reasons). A row's
    own reason comes first, else that of a held row it references; parents are decided before children, so
    a hold reaches grandchildren too. Every caller (daily plan, requests, access export) asks here."""
    order = list(tables)
    parents = {tid: {(tid[0], parent) for parent in tables[tid].refs.values()} for tid in order}
    bookkeeping = columns.deadline(policy.bookkeeping_hold.purpose)
    held: dict[TableId, pd.DataFrame] = {}
    for tid in reversed(children_first(order, parents.__getitem__)):
        table = tables[tid]
        frame = table.frame
        reasons = hold_reasons(frame, tid, table.purposes, policy, holds, moment)
        until = pd.Series(pd.NaT, index=frame.index, dtype=UTC_DTYPE)
        if bookkeeping in frame.columns:
            until = until.where(reasons != HOLD_BOOKKEEPING, frame[bookkeeping])
        for ref_column, parent in table.refs.items():
            above = held.get((tid[0], parent))
            if above is None or ref_column not in frame.columns or not (above["reason"] != "").any():
                continue
            by_key = above[above["reason"] != ""].set_axis(
                tables[(tid[0], parent)].frame.loc[above["reason"] != "", columns.PK].to_numpy()
            )
            by_key = by_key[~by_key.index.duplicated()]
            free = (reasons == "").to_numpy()
            refs = frame[ref_column]
            inherited = refs.map(by_key["reason"]).fillna("").to_numpy()
            take = free & (inherited != "")
            reasons = reasons.where(~take, inherited)
            until = until.where(~take, pd.Series(refs.map(by_key["until"]).to_numpy(), index=frame.index).pipe(as_utc))
        held[tid] = pd.DataFrame({"reason": reasons, "until": until.astype(UTC_DTYPE)}, index=frame.index)
    return held

"""The retention plan for an as-of day: which rows and fields are due, what to do, and why.

Pure: it reads tagged records, the policy and the holds, and changes nothing. The plan holds keys, subject
keys, column names and reasons; never a value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import pandas as pd

from retention.config.catalog import Catalog, TableId
from retention.config.policy import Action, Policy
from retention.daily.tagging import Tagged
from retention.rules.calendar import end_of_day
from retention.rules.holds import HOLD_BOOKKEEPING, HOLD_LEGAL_CLAIM, HOLD_RESTRICTION, Holds

PLAN_COLUMNS = ["pk", "subject", "action", "fields", "purpose", "deadline", "note"]


class GuardError(Exception):
    """The plan would touch more of a table than the policy allows without confirmation."""


@dataclass
class Plan:
    """`entries[(source, table)]`: one row per (table row, purpose) that is due, with columns PLAN_COLUMNS.

    action is 'delete' (the row), 'pseudonymise' or 'clear' (the listed fields). `held` counts rows kept by
    hold reason, `undated` rows kept because a purpose lacks a usable date, `table_rows` rows per table.
    """

    as_of: dt.date
    entries: dict[TableId, pd.DataFrame]
    held: dict[TableId, dict[str, int]] = field(default_factory=dict)
    held_keys: dict[TableId, pd.Series] = field(default_factory=dict)
    undated: dict[TableId, dict[str, int]] = field(default_factory=dict)
    table_rows: dict[TableId, int] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Counts of planned rows by source, table, action and purpose (the plan's public face)."""
        frames = []
        for (source, table), entries in self.entries.items():
            if entries.empty:
                continue
            counts = entries.groupby(["action", "purpose"]).size().rename("rows").reset_index()
            counts.insert(0, "table", table)
            counts.insert(0, "source", source)
            frames.append(counts)
        if not frames:
            return pd.DataFrame(columns=["source", "table", "action", "purpose", "rows"])
        return pd.concat(frames, ignore_index=True).sort_values(["source", "table", "action", "purpose"])

    def touched(self, table: TableId) -> int:
        entries = self.entries.get(table)
        return 0 if entries is None else entries["pk"].nunique()

    def total(self) -> int:
        return sum(len(e) for e in self.entries.values())


def _live_needs(catalog: Catalog, source: str, table: str) -> dict[str, set[str]]:
    entry = catalog.table(source, table)
    return {purpose: set(entry.columns_needed_by(purpose)) for purpose in entry.purposes}


def plan_retention(
    catalog: Catalog,
    policy: Policy,
    tagged: Tagged,
    as_of: dt.date,
    *,
    holds: Holds | None = None,
    done: Mapping[TableId, Collection[tuple[object, str]]] | None = None,
) -> Plan:
    """Plan the day. `done` lists (pk, purpose) pairs the ledger already records as applied, so a day planned
    after its apply is empty and a re-run changes nothing."""
    holds = holds or Holds()
    as_of_end = end_of_day(as_of, policy.timezone)
    hold_tables = {tuple(t.split(".", 1)) for t in policy.bookkeeping_hold.tables}
    bookkeeping = policy.bookkeeping_hold.purpose
    plan = Plan(as_of, {})

    decided: dict[TableId, pd.DataFrame] = {}
    keep_rows: dict[TableId, pd.Series] = {}  # rows that stay (not deleted), by table: pk -> True
    # children first, so a parent knows whether a kept row still references it
    catalog_order = [tid for s, t, _ in catalog.tables() if (tid := (s, t)) in tagged]
    for source, table in children_first(tagged, catalog_order):
        t = tagged[(source, table)]
        frame = t.frame
        plan.table_rows[(source, table)] = len(frame)
        expired = {p: (frame[f"deadline:{p}"] < as_of_end).fillna(False).to_numpy() for p in t.purposes}
        held = pd.Series("", index=frame.index, dtype=object)
        if (source, table) in hold_tables and bookkeeping in t.purposes:
            held[~expired[bookkeeping]] = HOLD_BOOKKEEPING
        held[(held == "") & frame["subject"].isin(holds.legal_claim)] = HOLD_LEGAL_CLAIM
        held[(held == "") & frame["subject"].isin(holds.restricted)] = HOLD_RESTRICTION
        is_held = (held != "").to_numpy()
        plan.held[(source, table)] = {k: int(v) for k, v in held[held != ""].value_counts().items()}
        plan.held_keys[(source, table)] = pd.Series(
            held[is_held].to_numpy(), index=frame.loc[is_held, "pk"].to_numpy(), dtype=object, name="hold"
        )
        plan.undated[(source, table)] = {
            p: int(frame[f"undated:{p}"].sum()) for p in t.purposes if frame[f"undated:{p}"].any()
        }

        needs = _live_needs(catalog, source, table)
        all_expired = pd.Series(True, index=frame.index)
        for p in t.purposes:
            all_expired &= expired[p]
        deleters = [p for p in t.purposes if policy.purposes[p].action is Action.DELETE]
        wants_delete = all_expired & pd.Series(
            [False] * len(frame) if not deleters else pd.DataFrame({p: expired[p] for p in deleters}).any(axis=1),
            index=frame.index,
        )
        wants_delete &= ~pd.Series(is_held, index=frame.index)
        referenced = _referenced_by_kept(frame, t.refs, source, keep_rows, tagged, (source, table))
        blocked = wants_delete & referenced
        deleting = wants_delete & ~referenced

        rows: list[pd.DataFrame] = []
        if deleting.any():
            first_deleter = pd.DataFrame({p: expired[p] for p in deleters}).idxmax(axis=1)
            sel = frame[deleting]
            rows.append(
                pd.DataFrame(
                    {
                        "pk": sel["pk"].to_numpy(),
                        "subject": sel["subject"].to_numpy(),
                        "action": Action.DELETE.value,
                        "fields": [()] * len(sel),
                        "purpose": first_deleter[deleting].to_numpy(),
                        "deadline": _pick(frame, first_deleter, deleters)[deleting].to_numpy(),
                        "note": "",
                    }
                )
            )
        # field actions for rows that stay: group by which purposes are still live (few distinct patterns)
        staying = ~deleting & ~pd.Series(is_held, index=frame.index)
        pattern = pd.DataFrame({p: expired[p] for p in t.purposes}, index=frame.index)
        for key, group in frame[staying].groupby([pattern.loc[staying, p] for p in t.purposes], sort=False):
            key = key if isinstance(key, tuple) else (key,)
            state = dict(zip(t.purposes, key, strict=True))
            live_fields = set().union(*(needs[p] for p, gone in state.items() if not gone))
            block_note = blocked[group.index]
            for p, gone in state.items():
                if not gone:
                    continue
                action = policy.purposes[p].action
                fields = needs[p] - live_fields
                if action is Action.DELETE and not all(state.values()):
                    field_action = Action.CLEAR
                elif action is Action.DELETE:
                    field_action = Action.PSEUDONYMISE  # wanted deletion, but a kept row still references it
                    fields = set().union(*needs.values())
                else:
                    field_action = action
                if not fields:
                    continue
                rows.append(_field_entries(group, p, field_action, sorted(fields), block_note))
        entries = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PLAN_COLUMNS)
        # rows whose deletion the ledger already records are going too, even if still there: a pending batch
        # is finished by the apply step's recovery, before this plan
        deleted_pks = set(entries.loc[entries["action"] == Action.DELETE.value, "pk"])
        entries = _drop_done(entries, (done or {}).get((source, table)))
        entries = _drop_empty_fields(entries, frame)
        decided[(source, table)] = entries
        keep_rows[(source, table)] = pd.Series(~frame["pk"].isin(deleted_pks).to_numpy(), index=frame["pk"])
    plan.entries = {tid: decided[tid] for s, t, _ in catalog.tables() if (tid := (s, t)) in decided}
    return plan


def _field_entries(
    group: pd.DataFrame, purpose: str, action: Action, fields: list[str], blocked: pd.Series
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pk": group["pk"].to_numpy(),
            "subject": group["subject"].to_numpy(),
            "action": action.value,
            "fields": [tuple(fields)] * len(group),
            "purpose": purpose,
            "deadline": group[f"deadline:{purpose}"].to_numpy(),
            "note": blocked.map({True: "referenced by kept rows, so pseudonymised instead of deleted", False: ""})
            .fillna("")
            .to_numpy(),
        }
    )


def _drop_done(entries: pd.DataFrame, done: Collection[tuple[object, str]] | None) -> pd.DataFrame:
    if not done or entries.empty:
        return entries
    done_set = {(str(pk), purpose) for pk, purpose in done}
    mask = [(str(pk), purpose) not in done_set for pk, purpose in zip(entries["pk"], entries["purpose"], strict=True)]
    return entries[mask].reset_index(drop=True)


def _pick(frame: pd.DataFrame, chosen: pd.Series, purposes: list[str]) -> pd.Series:
    """The deadline of the purpose chosen for each row."""
    deadline = pd.Series(pd.NaT, index=frame.index, dtype=frame[f"deadline:{purposes[0]}"].dtype)
    for p in purposes:
        deadline = deadline.where(chosen != p, frame[f"deadline:{p}"])
    return deadline


def _drop_empty_fields(entries: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """A field that is already empty needs no action; an entry left with no fields is no entry."""
    if entries.empty:
        return entries
    has = frame.set_index("pk")
    kept_fields = pd.Series([()] * len(entries), index=entries.index, dtype=object)
    updates = entries["action"] != Action.DELETE.value
    kept_fields[~updates] = entries.loc[~updates, "fields"]
    for fields, group in entries[updates].groupby("fields", sort=False):
        filled = has.loc[group["pk"].to_numpy(), [f"has:{f}" for f in fields]].to_numpy(dtype=bool)
        bits = filled @ (1 << pd.RangeIndex(len(fields)).to_numpy())
        patterns = {b: tuple(f for i, f in enumerate(fields) if b >> i & 1) for b in set(bits.tolist())}
        kept_fields[group.index] = [patterns[b] for b in bits.tolist()]
    entries = entries.assign(fields=kept_fields)
    keep = ~updates | (entries["fields"].map(len) > 0)
    return entries[keep].reset_index(drop=True)


def _referenced_by_kept(
    frame: pd.DataFrame,
    refs: dict[str, str],
    source: str,
    keep_rows: dict[TableId, pd.Series],
    tagged: Tagged,
    me: TableId,
) -> pd.Series:
    """Rows of `me` that some row staying in another table of the source still references by foreign key."""
    referenced = pd.Series(False, index=frame.index)
    for (child_source, child_table), child in tagged.items():
        if child_source != source or (child_source, child_table) == me:
            continue
        for ref_col, parent in child.refs.items():
            if parent != me[1]:
                continue
            kept = keep_rows.get((child_source, child_table))
            child_frame = child.frame
            mask = kept.to_numpy() if kept is not None else slice(None)
            still = set(child_frame.loc[mask, ref_col].dropna())
            referenced |= frame["pk"].isin(still)
    return referenced


def children_first(tagged: Tagged, tables: list[TableId]) -> list[TableId]:
    """Tables ordered so that every table comes after all tables whose rows reference it by foreign key."""
    order: list[TableId] = []
    remaining = list(tables)
    while remaining:
        for tid in remaining:
            if not any(o != tid and o[0] == tid[0] and tid[1] in tagged[o].refs.values() for o in remaining):
                order.append(tid)
                remaining.remove(tid)
                break
        else:
            order.extend(remaining)  # a foreign-key cycle: keep the given order, apply will report violations
            break
    return order


def check_guard(plan: Plan, policy: Policy, *, confirmed: bool) -> None:
    """Stop before a plan touches more than the allowed share of any table, unless confirmed for this run."""
    if confirmed:
        return
    over = []
    for tid, rows in plan.table_rows.items():
        touched = plan.touched(tid)
        if rows >= policy.guard.min_rows and touched / rows > policy.guard.max_share:
            over.append(f"{tid[0]}.{tid[1]}: {touched} of {rows} rows ({touched / rows:.0%})")
    if over:
        raise GuardError(
            f"the plan for {plan.as_of} would touch more than {policy.guard.max_share:.0%} of "
            + ("these tables" if len(over) > 1 else "this table")
            + ": "
            + "; ".join(over)
            + ". If that is intended (e.g. a first run on old data), confirm it for this run: "
            "`retention run --as-of DAY --confirm-large-plan`, or run config `confirm_large_plan: true`; "
            "otherwise check the periods in the policy."
        )

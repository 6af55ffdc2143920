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
from retention.rules import columns
from retention.rules.calendar import end_of_day
from retention.rules.clocks import expired
from retention.rules.holds import Holds, held_rows
from retention.rules.minimisation import fields_needed, only_filled_fields
from retention.rules.pseudonyms import not_pseudonymised_again
from retention.rules.references import children_first, referenced_by_staying

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
    shared_identifiers: int = 0
    """Weak identifiers (e.g. phones) that different people share, so they joined nobody: for the report."""

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


def plan_retention(
    catalog: Catalog,
    policy: Policy,
    tagged: Tagged,
    as_of: dt.date,
    *,
    holds: Holds | None = None,
    done: Mapping[TableId, Collection[tuple[object, str]]] | None = None,
    changed: Mapping[TableId, pd.DataFrame] | None = None,
    shared_identifiers: int = 0,
) -> Plan:
    """Plan the day. `done` lists (pk, purpose) pairs the ledger already records as applied, so a day planned
    after its apply is empty and a re-run changes nothing; `changed` the fields it records as changed per row
    (`load_known_subjects`), which are not pseudonymised again."""
    holds = holds or Holds()
    as_of_end = end_of_day(as_of, policy.timezone)
    plan = Plan(as_of, {}, shared_identifiers=shared_identifiers)

    decided: dict[TableId, pd.DataFrame] = {}
    leaving: dict[TableId, set[object]] = {}  # rows each decided table deletes
    # children first, so a parent knows whether a kept row still references it
    catalog_order = [tid for s, t, _ in catalog.tables() if (tid := (s, t)) in tagged]
    parents = {tid: {(tid[0], parent) for parent in tagged[tid].refs.values()} for tid in catalog_order}
    held_by_table = held_rows(tagged, policy, holds, as_of_end)
    for source, table in children_first(catalog_order, parents.__getitem__):
        tid = (source, table)
        t = tagged[tid]
        entry = catalog.table(source, table)
        frame = t.frame
        plan.table_rows[tid] = len(frame)
        ended = {p: expired(frame[columns.deadline(p)], as_of_end).to_numpy() for p in t.purposes}
        held = held_by_table[tid]["reason"]
        is_held = (held != "").to_numpy()
        plan.held[tid] = {k: int(v) for k, v in held[held != ""].value_counts().items()}
        plan.held_keys[tid] = pd.Series(
            held[is_held].to_numpy(), index=frame.loc[is_held, columns.PK].to_numpy(), dtype=object, name="hold"
        )
        plan.undated[tid] = {
            p: int(frame[columns.undated(p)].sum()) for p in t.purposes if frame[columns.undated(p)].any()
        }

        all_ended = pd.Series(True, index=frame.index)
        for p in t.purposes:
            all_ended &= ended[p]
        deleters = [p for p in t.purposes if policy.purposes[p].action is Action.DELETE]
        wants_delete = all_ended & pd.Series(
            [False] * len(frame) if not deleters else pd.DataFrame({p: ended[p] for p in deleters}).any(axis=1),
            index=frame.index,
        )
        wants_delete &= ~pd.Series(is_held, index=frame.index)
        referenced = referenced_by_staying(frame[columns.PK], tid, tagged, leaving)
        blocked = wants_delete & referenced
        deleting = wants_delete & ~referenced

        rows: list[pd.DataFrame] = []
        if deleting.any():
            first_deleter = pd.DataFrame({p: ended[p] for p in deleters}).idxmax(axis=1)
            sel = frame[deleting]
            rows.append(
                pd.DataFrame(
                    {
                        "pk": sel[columns.PK].to_numpy(),
                        "subject": sel[columns.SUBJECT].to_numpy(),
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
        pattern = pd.DataFrame({p: ended[p] for p in t.purposes}, index=frame.index)
        for key, group in frame[staying].groupby([pattern.loc[staying, p] for p in t.purposes], sort=False):
            key = key if isinstance(key, tuple) else (key,)
            state = dict(zip(t.purposes, key, strict=True))
            live_fields = fields_needed(entry, [p for p, gone in state.items() if not gone])
            block_note = blocked[group.index]
            for p, gone in state.items():
                if not gone:
                    continue
                action = policy.purposes[p].action
                fields = fields_needed(entry, [p]) - live_fields
                if action is Action.DELETE and not all(state.values()):
                    field_action = Action.CLEAR
                elif action is Action.DELETE:
                    field_action = Action.PSEUDONYMISE  # wanted deletion, but a kept row still references it
                    fields = fields_needed(entry, t.purposes)
                else:
                    field_action = action
                if not fields:
                    continue
                rows.append(_field_entries(group, p, field_action, sorted(fields), block_note))
        entries = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PLAN_COLUMNS)
        # rows whose deletion the ledger already records are going too, even if still there: a pending batch
        # is finished by the apply step's recovery, before this plan
        leaving[tid] = set(entries.loc[entries["action"] == Action.DELETE.value, "pk"])
        entries = _drop_done(entries, (done or {}).get(tid))
        entries = not_pseudonymised_again(entries, (changed or {}).get(tid))
        decided[tid] = only_filled_fields(entries, frame)
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
            "deadline": group[columns.deadline(purpose)].to_numpy(),
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
    deadline = pd.Series(pd.NaT, index=frame.index, dtype=frame[columns.deadline(purposes[0])].dtype)
    for p in purposes:
        deadline = deadline.where(chosen != p, frame[columns.deadline(p)])
    return deadline


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

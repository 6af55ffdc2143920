"""The plan for one person: what an erasure or objection changes, table by table, and why the rest is kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TypedDict

import pandas as pd

from retention.apply.applier import ApplyResult, SourceApplier
from retention.apply.verification import verify
from retention.config.catalog import TableId
from retention.config.keys import Keyring
from retention.config.loading import EstateConfig
from retention.config.policy import Action
from retention.config.requests import RequestSettings
from retention.daily.planning import PLAN_COLUMNS, Plan
from retention.requests.context import PersonRequest
from retention.requests.kinds import ARTICLE, SUPPRESSION_ARTICLE, RequestKind
from retention.requests.receipts import KeptRows, TableReceipt, UnchangedRows, VerificationReceipt
from retention.requests.view import EstateView, Progress
from retention.rules import columns
from retention.rules.clocks import last_day_kept
from retention.rules.holds import HOLD_BOOKKEEPING, Holds, held_rows, hold_why
from retention.rules.minimisation import fields_freed, only_filled_fields
from retention.rules.pseudonyms import not_pseudonymised_again
from retention.rules.references import children_first, referenced_by_staying
from retention.storage.control import load_done, load_holds, load_known_subjects
from retention.storage.engines import Estate

ERASURE_PURPOSE = "request:erasure"


OBJECTION_PURPOSE = "request:marketing_objection"


SUPPRESSION_PURPOSE = "suppression:marketing"


NO_PERSONAL_COLUMNS = "no personal data in its own columns; it is linked only to pseudonymised rows"


ALREADY_DONE = "already pseudonymised or empty"


NO_MARKETING_COLUMNS = "none of its columns serves only marketing"


class Kept(TypedDict):
    """Rows kept for one reason: how many, until when (ISO date of the last day, if known) and why."""

    rows: int
    until: str | None
    why: str


@dataclass
class TableDecision:
    """What the request does to one table of the person (counts and field names, never values)."""

    source: str
    table: str
    rows_found: int = 0
    delete: int = 0
    pseudonymise: int = 0
    fields: set[str] = field(default_factory=set)
    kept: dict[str, Kept] = field(default_factory=dict)  # reason -> rows, until, why
    unchanged: dict[str, int] = field(default_factory=dict)  # reason -> rows
    notes: set[str] = field(default_factory=set)

    def keep(self, reason: str, rows: int, until: dt.date | None, why: str) -> None:
        entry = self.kept.setdefault(reason, {"rows": 0, "until": None, "why": why})
        entry["rows"] += rows
        if until is not None and (entry["until"] is None or until.isoformat() > entry["until"]):
            entry["until"] = until.isoformat()


@dataclass
class PersonPlan:
    plan: Plan
    decisions: dict[TableId, TableDecision]


@dataclass(frozen=True)
class Label:
    """How the ledger names the actions of a request: purpose, rule and legal basis."""

    purpose: str
    rule: str
    legal_basis: str


def request_label(kind: RequestKind, request_id: int) -> Label:
    if kind is RequestKind.ERASURE:
        return Label(ERASURE_PURPOSE, f"erasure request #{request_id} ({ARTICLE[kind]})", "GDPR Art 17(1)")
    return Label(
        OBJECTION_PURPOSE,
        f"marketing objection #{request_id} ({ARTICLE[kind]})",
        f"GDPR {ARTICLE[kind]}: objection to direct marketing, including profiling for it",
    )


SUPPRESSION_LABEL = Label(
    SUPPRESSION_PURPOSE,
    f"marketing suppression list (objections under {ARTICLE[RequestKind.MARKETING_OBJECTION]})",
    f"GDPR {SUPPRESSION_ARTICLE}: no further processing for direct marketing",
)


def plan_for_person(
    config: EstateConfig,
    view: EstateView,
    subjects: Collection[str],
    kind: RequestKind,
    *,
    label: Label,
    now: dt.datetime,
    holds: Holds,
    done: Mapping[TableId, Collection[tuple[object, str]]],
    known: Mapping[TableId, pd.DataFrame],
    settings: RequestSettings,
) -> PersonPlan:
    """The erasure or objection plan of the given subjects, with the reasons for everything kept."""
    catalog, policy = config.catalog, config.policy
    tz = policy.timezone
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    marketing = set(settings.marketing_purposes)
    purpose, rule, basis = label.purpose, label.rule, label.legal_basis
    plan = Plan(now_ts.tz_convert(tz).date(), {})
    decisions: dict[TableId, TableDecision] = {}
    leaving: dict[TableId, set[object]] = {}  # rows each decided table deletes (for the reference check)
    tables = list(view.tagged)
    parents = {tid: {(tid[0], parent) for parent in view.tagged[tid].refs.values()} for tid in tables}
    held_by_table = held_rows(view.tagged, policy, holds.without_restrictions(), now_ts)
    for tid in children_first(tables, parents.__getitem__):
        source, table = tid
        entry = catalog.table(source, table)
        purposes = list(entry.purposes)
        frame = view.tagged[tid].frame
        rows = frame[frame[columns.SUBJECT].isin(list(subjects))]
        if kind is RequestKind.MARKETING_OBJECTION:
            if not marketing & set(purposes):
                continue
            delete_table = set(purposes) <= marketing
            freed = fields_freed(entry, marketing & set(purposes))
            fields = [c for c in entry.columns if c in freed]
            action = Action.CLEAR
        else:
            delete_table = all(policy.purposes[p].action is Action.DELETE for p in purposes)
            fields = list(entry.columns)
            action = Action.PSEUDONYMISE
        if rows.empty:
            continue
        decision = decisions.setdefault(tid, TableDecision(source, table, rows_found=len(rows)))
        holding = held_by_table[tid].loc[rows.index]
        held = holding["reason"]
        for reason, group in rows[held != ""].groupby(held[held != ""]):
            until = None
            if reason == HOLD_BOOKKEEPING:
                days = [d for d in (last_day_kept(x, tz) for x in holding.loc[group.index, "until"]) if d]
                until = max(days) if days else None
            decision.keep(reason, len(group), until, hold_why(reason, policy))
        if (held != "").any():
            plan.held_keys[tid] = pd.Series(
                held[held != ""].to_numpy(),
                index=rows.loc[held != "", columns.PK].to_numpy(),
                dtype=object,
                name="hold",
            )
        acting = rows[held == ""]
        already = {str(pk) for pk, p in done.get(tid, ()) if p == purpose}
        fresh = acting[~acting[columns.PK].astype(str).isin(already)]
        if len(fresh) < len(acting):
            decision.unchanged["already carried out by an earlier request"] = len(acting) - len(fresh)
        if delete_table:
            blocked = referenced_by_staying(fresh[columns.PK], tid, view.tagged, leaving)
            to_delete, to_change = fresh[~blocked], fresh[blocked]
            if blocked.any():
                decision.notes.add("still referenced by rows that stay, so pseudonymised instead of deleted")
        else:
            to_delete, to_change = fresh.iloc[0:0], fresh
        entries = []
        if not to_delete.empty:
            leaving[tid] = set(to_delete[columns.PK])
            decision.delete += len(to_delete)
            entries.append(_entries(to_delete, Action.DELETE, [()] * len(to_delete), purpose, rule, basis))
        planned = _entries(to_change, action, [tuple(fields)] * len(to_change), purpose, rule, basis)
        changing = only_filled_fields(not_pseudonymised_again(planned, known.get(tid)), frame)
        if not changing.empty:
            decision.pseudonymise += len(changing)
            decision.fields.update(f for fs in changing["fields"] for f in fs)
            entries.append(changing)
        left = len(to_change) - len(changing)
        if left:
            if fields:
                reason = ALREADY_DONE
            elif kind is RequestKind.MARKETING_OBJECTION:
                reason = NO_MARKETING_COLUMNS
            else:
                reason = NO_PERSONAL_COLUMNS
            decision.unchanged[reason] = decision.unchanged.get(reason, 0) + left
        if entries:
            plan.entries[tid] = pd.concat(entries, ignore_index=True)
    plan.entries = {tid: plan.entries[tid] for tid in view.tagged if tid in plan.entries}
    return PersonPlan(plan, {tid: decisions[tid] for tid in view.tagged if tid in decisions})


def _entries(
    rows: pd.DataFrame, action: Action, fields: list[tuple[str, ...]], purpose: str, rule: str, basis: str
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "pk": rows["pk"].to_numpy(),
            "subject": rows["subject"].to_numpy(),
            "action": action.value,
            "fields": fields,
            "purpose": purpose,
            "deadline": pd.NaT,
            "note": "",
            "rule": rule,
            "legal_basis": basis,
        }
    )
    return frame[[*PLAN_COLUMNS, "rule", "legal_basis"]]


@dataclass
class Applied:
    results: dict[str, ApplyResult]
    problems: list[str]


def recover_killed_batches(config: EstateConfig, estate: Estate, keyring: Keyring, *, run_id: str) -> int:
    """Finish every source's batches that killed runs left pending, before the person is read: the ledger counts
    a pending entry as done, and a source the person's plan leaves alone would otherwise never finish it. The
    caller holds the sources' leases. A restored source stops this as it stops an apply (`check_not_restored`)."""
    assert estate.control is not None
    recovered = 0
    for source, engine in estate.sources.items():
        applier = SourceApplier(config, source, engine, estate.control, keyring, run_id=run_id, as_of=dt.date.today())
        applier.check_not_restored()
        recovered += applier.recover()
    return recovered


def apply_person_plan(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    plan: Plan,
    *,
    run_id: str,
    progress: Progress | None = None,
) -> Applied:
    """The daily run's applier, source by source, and its verification afterwards."""
    assert estate.control is not None
    sources = {s for s, _ in plan.entries} | {s for s, _ in plan.held_keys}
    results: dict[str, ApplyResult] = {}
    problems: list[str] = []
    for source in [s for s in estate.sources if s in sources]:
        if progress is not None:
            progress(f"apply {source}")
        applier = SourceApplier(
            config, source, estate.sources[source], estate.control, keyring, run_id=run_id, as_of=plan.as_of
        )
        result = applier.apply(plan)
        results[source] = result
        problems += verify(applier, result)
    return Applied(results, problems)


def table_receipts(decisions: Mapping[TableId, TableDecision], applied: Applied | None) -> list[TableReceipt]:
    """Per table: rows found, deleted and pseudonymised as the databases report them, and what was kept."""
    out = []
    for (source, table), d in decisions.items():
        outcome = applied.results[source].tables.get(table) if applied and source in applied.results else None
        out.append(
            TableReceipt(
                source=source,
                table=table,
                rows_found=d.rows_found,
                deleted=outcome.deleted if outcome else 0,
                pseudonymised=outcome.updated if outcome else 0,
                fields_changed=sorted(d.fields),
                kept=[KeptRows(reason=r, **v) for r, v in sorted(d.kept.items())],
                unchanged=[UnchangedRows(reason=r, rows=n) for r, n in sorted(d.unchanged.items())],
                notes=sorted(d.notes),
            )
        )
    return out


def plan_and_apply(person: PersonRequest) -> tuple[list[TableReceipt], VerificationReceipt]:
    """An erasure's or objection's plan for the person, applied and verified: the receipt's tables and check."""
    control = person.control
    kind, request_id = person.request.kind, person.request.request_id
    planned = plan_for_person(
        person.config,
        person.view,
        person.subjects,
        kind,
        label=request_label(kind, request_id),
        now=person.moment,
        holds=load_holds(control),
        done=load_done(control, person.subjects),
        known=load_known_subjects(control, person.subjects),
        settings=person.settings,
    )
    applied = apply_person_plan(
        person.config, person.estate, person.keyring, planned.plan, run_id=person.run_id, progress=person.progress
    )
    return table_receipts(planned.decisions, applied), VerificationReceipt(
        passed=not applied.problems, problems=applied.problems
    )

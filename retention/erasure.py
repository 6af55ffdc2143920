"""Carrying out one subject request: find the person, plan what to change for them, apply it with the daily
run's applier (batches, ledger, crash recovery, verification), and write the receipt.

Erasure follows the catalog: rows of a table whose purposes all end in deletion are deleted, other rows are
pseudonymised with their columns' anonymisers; vouchers inside their bookkeeping period and rows under a legal
claim are kept untouched and listed with the reason and until when. A marketing objection deletes the rows
that serve only marketing purposes and puts the person on the suppression list the daily run honours.
Everything here holds keys, subject keys and counts; the raw identifiers stay in the register until done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from anonymizers.keys import Key
from retention.applying import ApplyResult, SourceApplier, verify
from retention.catalog import Catalog, IdentifierKind, TableEntry
from retention.config import EstateConfig
from retention.control import (
    ensure_schema,
    load_activity,
    load_done,
    load_holds,
    load_known_subjects,
    load_token_subjects,
    restrictions,
    save_activity,
    save_token_subjects,
)
from retention.estate import Estate
from retention.export import purge_exports, write_export
from retention.keys import Keyring
from retention.pipeline import index_subjects
from retention.planning import HOLD_BOOKKEEPING, HOLD_LEGAL_CLAIM, PLAN_COLUMNS, Holds, Plan, children_first
from retention.policy import Action
from retention.requests import (
    KIND_TEXT,
    LockBusy,
    RequestKind,
    RequestSettings,
    RequestStatus,
    SubjectRequest,
    Suppressions,
    acquire_locks,
    add_suppressions,
    claim_request,
    complete_request,
    ensure_request_schema,
    fail_request,
    get_request,
    load_request_settings,
    person_keys,
    release_locks,
    requeue_request,
    subjects_of_tokens,
    tokens_of,
)
from retention.snapshot import SourceSnapshot, TableSnapshot, snapshot_source, snapshot_table
from retention.subjects import SubjectIndex, TableId, build_subject_index
from retention.tagging import Tagged, tag_records
from retention.timeutil import end_of_day

ERASURE_PURPOSE = "request:erasure"
OBJECTION_PURPOSE = "request:marketing_objection"
SUPPRESSION_PURPOSE = "suppression:marketing"

HOLD_WHY = {
    HOLD_BOOKKEEPING: "accounting voucher inside its bookkeeping period (bogføringsloven; GDPR Art 17(3)(b))",
    HOLD_LEGAL_CLAIM: "needed for a legal claim (GDPR Art 17(3)(e)); kept until the claim is settled",
}
NO_PERSONAL_COLUMNS = "no personal data in its own columns; it is linked only to pseudonymised rows"
ALREADY_DONE = "already pseudonymised or empty"
NO_MARKETING_COLUMNS = "none of its columns serves only marketing"

Progress = Callable[[str], None]


# --- reading the estate -------------------------------------------------------------------------------------


@dataclass
class EstateView:
    """The estate as the daily run sees it: snapshots, subject index and tagged records (no raw values)."""

    snapshots: dict[str, SourceSnapshot]
    index: SubjectIndex
    tagged: Tagged

    def rows_of(self, table: TableId, subjects: Collection[str]) -> pd.DataFrame:
        frame = self.tagged[table].frame
        return frame[frame["subject"].isin(list(subjects))]


def read_estate(config: EstateConfig, estate: Estate, keyring: Keyring, progress: Progress | None = None) -> EstateView:
    """Snapshot every source and index subjects exactly as the daily run does (and remember what was seen)."""
    say = progress or (lambda _m: None)
    assert estate.control is not None
    snapshots = {}
    for source, engine in estate.sources.items():
        say(f"snapshot {source}")
        snapshots[source] = snapshot_source(engine, config.catalog, source, keyring.subject, config.policy.timezone)
    say("subject index")
    index = index_subjects(config, snapshots, keyring.subject, estate.control)
    tagged = tag_records(config.catalog, config.policy, snapshots, index)
    return EstateView(snapshots, index, tagged)


IN_CHUNK = 5000  # keys per IN list: every backend takes this many parameters in one statement


def _snapshot_where(
    config: EstateConfig, engine: sa.Engine, table: str, entry: TableEntry, key: Key, column: str, values: list[object]
) -> TableSnapshot:
    """The snapshot of the rows whose `column` is one of `values` (an index lookup per chunk of keys)."""
    tz = config.policy.timezone
    if not values:
        return snapshot_table(engine, table, entry, key, tz, where=lambda _t: sa.false())
    parts = [
        snapshot_table(engine, table, entry, key, tz, where=lambda t, c=chunk: t.c[column].in_(c))
        for chunk in (values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK))
    ]
    frame = pd.concat([p.frame for p in parts], ignore_index=True).drop_duplicates("pk", ignore_index=True)
    return TableSnapshot(frame, parts[0].date_only, parts[0].refs)


def read_person(
    config: EstateConfig, estate: Estate, keyring: Keyring, tokens: Collection[str], progress: Progress | None = None
) -> EstateView:
    """The estate as far as one person is concerned, read without scanning the big tables.

    Tables that carry identifiers are read whole (the identifiers are normalised and keyed in Python, so no
    index can find them), which gives the identity groups exactly as the daily run forms them. From the rows
    of the subjects the tokens lead to, their child rows are read by foreign key, table by table, and so are
    other rows that reference them (a row still referenced is pseudonymised, not deleted). Every row of the
    person is in the view; rows of other people are only there as identity or as references.
    """
    say = progress or (lambda _m: None)
    catalog, key = config.catalog, keyring.subject
    control = estate.control
    assert control is not None
    ensure_schema(control)
    known, activity, remembered = load_known_subjects(control), load_activity(control), load_token_subjects(control)
    snapshots: dict[str, SourceSnapshot] = {source: {} for source in catalog.sources}
    for source, table, entry in catalog.tables():
        engine = estate.sources[source]
        if entry.subject.identifiers:
            say(f"identifiers of {source}.{table}")
            snapshots[source][table] = snapshot_table(engine, table, entry, key, config.policy.timezone)
        else:
            snapshots[source][table] = _snapshot_where(config, engine, table, entry, key, entry.pk, [])
    first = build_subject_index(catalog, snapshots, key, known, activity, remembered)
    save_token_subjects(control, first.tokens, remembered)
    subjects = {s for t in tokens if (s := first.tokens.get(t) or remembered.get(t))}
    if subjects:
        say("rows of the person")
    included = _keep_identity_rows(catalog, snapshots, first, subjects)
    _add_descendants(config, estate, key, snapshots, included)
    index = build_subject_index(catalog, snapshots, key, known, activity, remembered)
    save_activity(control, index.last_interaction.reindex(sorted(subjects)).dropna(), activity)
    return EstateView(snapshots, index, tag_records(catalog, config.policy, snapshots, index))


def _keep_identity_rows(
    catalog: Catalog, snapshots: dict[str, SourceSnapshot], index: SubjectIndex, subjects: set[str]
) -> dict[TableId, list[object]]:
    """Narrow the identifier tables to the subjects' rows (whole identity groups, so their subject keys come
    out as in the full index) and rows that reference those by a declared foreign key; return the subjects'
    keys per table."""
    included: dict[TableId, list[object]] = {}
    for source, table, entry in catalog.tables():
        if entry.subject.identifiers:
            rows = index.rows[(source, table)]
            included[(source, table)] = rows.index[rows.isin(list(subjects))].tolist()
    for source, table, entry in catalog.tables():
        if not entry.subject.identifiers:
            continue
        snap = snapshots[source][table]
        keep = snap.frame["pk"].isin(included[(source, table)])
        for ref, parent in snap.refs.items():
            keep |= snap.frame[ref].isin(included.get((source, parent), []))
        snapshots[source][table] = TableSnapshot(snap.frame[keep].reset_index(drop=True), snap.date_only, snap.refs)
    return included


def _add_descendants(
    config: EstateConfig,
    estate: Estate,
    key: Key,
    snapshots: dict[str, SourceSnapshot],
    included: dict[TableId, list[object]],
) -> None:
    """Read the child rows of the included rows by foreign key, parents before children, then the rows that
    reference any of them by another declared foreign key."""
    catalog = config.catalog
    pending = [(s, t) for s, t, e in catalog.tables() if not e.subject.identifiers]
    while pending:
        ready = [tid for tid in pending if (tid[0], catalog.table(*tid).subject.parent) in included]
        if not ready:
            break  # unresolvable parent links: the catalog check reports them
        for source, table in ready:
            entry = catalog.table(source, table)
            parent_keys = included[(source, entry.subject.parent)]
            snap = _snapshot_where(
                config, estate.sources[source], table, entry, key, str(entry.subject.foreign_key), parent_keys
            )
            snapshots[source][table] = snap
            included[(source, table)] = snap.frame["pk"].tolist()
            pending.remove((source, table))
    for source, table, entry in catalog.tables():
        if entry.subject.identifiers:
            continue
        snap = snapshots[source][table]
        for ref, parent in snap.refs.items():
            column = ref.removeprefix("ref:")
            targets = included.get((source, parent))
            if column == entry.subject.foreign_key or not targets:
                continue
            extra = _snapshot_where(config, estate.sources[source], table, entry, key, column, targets)
            frame = pd.concat([snapshots[source][table].frame, extra.frame], ignore_index=True)
            snapshots[source][table] = TableSnapshot(
                frame.drop_duplicates("pk", ignore_index=True), snap.date_only, snap.refs
            )


@dataclass(frozen=True)
class Match:
    """Whom the identifiers point at: subjects that still have rows, and what matched."""

    subjects: frozenset[str]
    kinds_matched: tuple[str, ...]
    ambiguous: bool


def find_person(view: EstateView, control: sa.Engine, request: SubjectRequest, keyring: Keyring) -> Match:
    """Match the keyed tokens of the identifiers given against the subject index (current and remembered)."""
    identifiers = request.identifiers or {}
    tokens = {
        kind: token
        for kind, value in identifiers.items()
        for token in tokens_of(keyring.subject, {IdentifierKind(kind): value})
    }
    mapping = subjects_of_tokens(control, list(tokens.values()))
    living = set(view.index.subjects["subject"])
    by_kind = {kind: mapping[t] for kind, t in tokens.items() if mapping.get(t) in living}
    subjects = frozenset(by_kind.values())
    return Match(subjects, tuple(sorted(by_kind)), len(subjects) > 1)


# --- the per-person plan ------------------------------------------------------------------------------------


@dataclass
class TableDecision:
    """What the request does to one table of the person (counts and field names, never values)."""

    source: str
    table: str
    rows_found: int = 0
    delete: int = 0
    pseudonymise: int = 0
    fields: set[str] = field(default_factory=set)
    kept: dict[str, dict[str, object]] = field(default_factory=dict)  # reason -> rows, until, why
    unchanged: dict[str, int] = field(default_factory=dict)  # reason -> rows
    notes: set[str] = field(default_factory=set)

    def keep(self, reason: str, rows: int, until: dt.date | None, why: str) -> None:
        entry = self.kept.setdefault(reason, {"rows": 0, "until": None, "why": why})
        entry["rows"] = int(entry["rows"]) + rows
        if until is not None and (entry["until"] is None or until.isoformat() > str(entry["until"])):
            entry["until"] = until.isoformat()


@dataclass
class PersonPlan:
    plan: Plan
    decisions: dict[TableId, TableDecision]


def _last_day(deadline: pd.Timestamp, tz: ZoneInfo) -> dt.date | None:
    """A deadline is the first instant after the period; the last day kept is the day before it."""
    if pd.isna(deadline):
        return None
    return (deadline - pd.Timedelta(microseconds=1)).tz_convert(tz).date()


@dataclass(frozen=True)
class Label:
    """How the ledger names the actions of a request: purpose, rule and legal basis."""

    purpose: str
    rule: str
    legal_basis: str


def request_label(kind: RequestKind, request_id: int) -> Label:
    if kind is RequestKind.ERASURE:
        return Label(ERASURE_PURPOSE, f"erasure request #{request_id} (Art 17)", "GDPR Art 17(1)")
    return Label(
        OBJECTION_PURPOSE,
        f"marketing objection #{request_id} (Art 21(3))",
        "GDPR Art 21(2)-(3): objection to direct marketing and profiling",
    )


SUPPRESSION_LABEL = Label(
    SUPPRESSION_PURPOSE,
    "marketing suppression list (objections under Art 21(3))",
    "GDPR Art 21(3): no further processing for direct marketing",
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
    skip: Mapping[TableId, Collection[object]] | None = None,
) -> PersonPlan:
    """The erasure or objection plan of the given subjects, with the reasons for everything kept.

    `skip` lists rows (by pk) that another plan already deletes, e.g. the daily plan for the suppression step.
    """
    catalog, policy = config.catalog, config.policy
    tz = policy.timezone
    now_ts = pd.Timestamp(now).tz_convert("UTC")
    hold_tables = {tuple(t.split(".", 1)) for t in policy.bookkeeping_hold.tables}
    bookkeeping = policy.bookkeeping_hold.purpose
    marketing = set(settings.marketing_purposes)
    purpose, rule, basis = label.purpose, label.rule, label.legal_basis
    plan = Plan(now_ts.tz_convert(tz).date(), {})
    decisions: dict[TableId, TableDecision] = {}
    staying: dict[TableId, set[object]] = {}  # rows of each table that stay (for the reference check)
    deleting: dict[TableId, set[object]] = {}
    for tid in children_first(view.tagged, list(view.tagged)):
        source, table = tid
        entry = catalog.table(source, table)
        purposes = list(entry.purposes)
        frame = view.tagged[tid].frame
        rows = frame[frame["subject"].isin(list(subjects))]
        if skip and skip.get(tid):
            rows = rows[~rows["pk"].isin(list(skip[tid]))]
        deleting[tid] = set()
        if kind is RequestKind.MARKETING_OBJECTION:
            if not marketing & set(purposes):
                continue
            delete_table = set(purposes) <= marketing
            other = set().union(*(entry.columns_needed_by(p) for p in purposes if p not in marketing))
            fields = [c for c in entry.columns if c not in other]
            action = Action.CLEAR
        else:
            delete_table = all(policy.purposes[p].action is Action.DELETE for p in purposes)
            fields = list(entry.columns)
            action = Action.PSEUDONYMISE
        if rows.empty:
            continue
        decision = decisions.setdefault(tid, TableDecision(source, table, rows_found=len(rows)))
        held = pd.Series("", index=rows.index, dtype=object)
        if tid in hold_tables and bookkeeping in purposes:
            live = rows[f"deadline:{bookkeeping}"]
            held[live.isna() | (live > now_ts)] = HOLD_BOOKKEEPING
        held[(held == "") & rows["subject"].isin(holds.legal_claim)] = HOLD_LEGAL_CLAIM
        for reason, group in rows[held != ""].groupby(held[held != ""]):
            until = None
            if reason == HOLD_BOOKKEEPING:
                days = [d for d in (_last_day(x, tz) for x in group[f"deadline:{bookkeeping}"]) if d is not None]
                until = max(days) if days else None
            decision.keep(reason, len(group), until, HOLD_WHY[reason])
        if (held != "").any():
            plan.held_keys[tid] = pd.Series(
                held[held != ""].to_numpy(), index=rows.loc[held != "", "pk"].to_numpy(), dtype=object, name="hold"
            )
        acting = rows[held == ""]
        already = {str(pk) for pk, p in done.get(tid, ()) if p == purpose}
        fresh = acting[~acting["pk"].astype(str).isin(already)]
        if len(fresh) < len(acting):
            decision.unchanged["already carried out by an earlier request"] = len(acting) - len(fresh)
        blocked = _referenced_by_staying(frame, fresh, view.tagged, tid, staying) if delete_table else None
        to_delete = fresh[~blocked] if blocked is not None else fresh.iloc[0:0]
        to_change = fresh[blocked] if blocked is not None else fresh
        if blocked is not None and blocked.any():
            decision.notes.add("still referenced by rows that stay, so pseudonymised instead of deleted")
        entries = []
        if not to_delete.empty:
            deleting[tid] = set(to_delete["pk"])
            decision.delete += len(to_delete)
            entries.append(_entries(to_delete, Action.DELETE, [()] * len(to_delete), purpose, rule, basis))
        replaced = _replaced_fields(known.get(tid), to_change["pk"])
        row_fields = [
            tuple(f for f in fields if has.get(f"has:{f}", False) and f not in replaced.get(str(pk), ()))
            for pk, has in zip(to_change["pk"], to_change.to_dict("records"), strict=True)
        ]
        with_fields = [bool(f) for f in row_fields]
        if any(with_fields):
            changing = to_change[with_fields]
            chosen = [f for f, keep in zip(row_fields, with_fields, strict=True) if keep]
            decision.pseudonymise += len(changing)
            decision.fields.update(f for fs in chosen for f in fs)
            entries.append(_entries(changing, action, chosen, purpose, rule, basis))
        left = len(to_change) - sum(with_fields)
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
        staying[tid] = set(frame["pk"]) - deleting[tid]
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


def _replaced_fields(known: pd.DataFrame | None, pks: pd.Series) -> dict[str, frozenset[str]]:
    """Fields the ledger already replaced per row (pk as text): replacing a token again would change it."""
    if known is None or known.empty or pks.empty:
        return {}
    wanted = known[known["pk"].isin(set(pks.astype(str)))]
    return dict(zip(wanted["pk"], wanted["fields"], strict=True))


def _referenced_by_staying(
    frame: pd.DataFrame, rows: pd.DataFrame, tagged: Tagged, me: TableId, staying: Mapping[TableId, set[object]]
) -> pd.Series:
    """Rows about to be deleted that a row staying in another table of the source references."""
    blocked = pd.Series(False, index=rows.index)
    for (source, table), child in tagged.items():
        if source != me[0] or (source, table) == me:
            continue
        for ref_col, parent in child.refs.items():
            if parent != me[1]:
                continue
            kept_pks = staying.get((source, table), set(child.frame["pk"]))
            child_frame = child.frame
            still = set(child_frame.loc[child_frame["pk"].isin(kept_pks), ref_col].dropna())
            blocked |= rows["pk"].isin(still)
    return blocked


# --- applying ----------------------------------------------------------------------------------------------


@dataclass
class Applied:
    results: dict[str, ApplyResult]
    problems: list[str]


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


# --- recipients (Art 19) -------------------------------------------------------------------------------------


def recipients_of(
    config: EstateConfig, settings: RequestSettings, estate: Estate, view: EstateView, subjects: Collection[str]
) -> list[dict[str, object]]:
    """Who received the person's data: one entry per recipient, with what and when (read before erasing)."""
    out: dict[str, dict[str, object]] = {}
    for rec in settings.recipients:
        source, table = rec.table.split(".", 1)
        rows = view.rows_of((source, table), subjects)
        if rows.empty:
            continue
        entry = config.catalog.table(source, table)
        sa_table = sa.Table(table, sa.MetaData(), autoload_with=estate.sources[source])
        columns = [sa_table.c[rec.recipient]]
        columns += [sa_table.c[c] for c in (rec.data, rec.date) if c is not None]
        pk_col = sa_table.c[entry.pk]
        pks = rows["pk"].tolist()
        with estate.sources[source].connect() as conn:
            for start in range(0, len(pks), 1000):
                for row in conn.execute(sa.select(*columns).where(pk_col.in_(pks[start : start + 1000]))):
                    values = row._mapping
                    name = str(values[rec.recipient])
                    item = out.setdefault(name, {"recipient": name, "data": set(), "records": 0, "last_shared": None})
                    item["records"] = int(item["records"]) + 1
                    if rec.data is not None and values[rec.data] is not None:
                        item["data"].add(str(values[rec.data]))  # type: ignore[union-attr]
                    if rec.date is not None and values[rec.date] is not None:
                        when = pd.Timestamp(values[rec.date]).date().isoformat()
                        if item["last_shared"] is None or when > str(item["last_shared"]):
                            item["last_shared"] = when
    return [{**v, "data": sorted(v["data"])} for _, v in sorted(out.items())]  # type: ignore[arg-type]


# --- receipts ------------------------------------------------------------------------------------------------


def table_receipts(decisions: Mapping[TableId, TableDecision], applied: Applied | None) -> list[dict[str, object]]:
    """Per table: rows found, deleted and pseudonymised as the databases report them, and what was kept."""
    out = []
    for (source, table), d in decisions.items():
        outcome = applied.results[source].tables.get(table) if applied and source in applied.results else None
        out.append(
            {
                "source": source,
                "table": table,
                "rows_found": d.rows_found,
                "deleted": outcome.deleted if outcome else 0,
                "pseudonymised": outcome.updated if outcome else 0,
                "fields_changed": sorted(d.fields),
                "kept": [{"reason": r, **v} for r, v in sorted(d.kept.items())],
                "unchanged": [{"reason": r, "rows": n} for r, n in sorted(d.unchanged.items())],
                "notes": sorted(d.notes),
            }
        )
    return out


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def receipt_text(receipt: Mapping[str, object]) -> str:
    """The receipt as a person reads it."""
    kind = RequestKind(str(receipt["kind"]))
    lines = [
        f"Receipt for request #{receipt['request']}: {KIND_TEXT[kind]}",
        f"received {receipt['received_at']}, answer due by {receipt['deadline']}, completed {receipt['completed_at']}",
        f"identifiers given: {', '.join(receipt['identifiers_given']) or 'none'}"  # type: ignore[arg-type]
        + (f"; matched by: {', '.join(receipt['matched_by'])}" if receipt.get("matched_by") else ""),  # type: ignore[arg-type]
        "",
        str(receipt["summary"]),
    ]
    tables = receipt.get("tables") or []
    if tables:
        lines.append("")
    for t in tables:  # type: ignore[union-attr]
        head = f"{t['source']}.{t['table']}: {_rows(t['rows_found'])} found"
        parts = []
        if t["deleted"]:
            parts.append(f"{t['deleted']} deleted")
        if t["pseudonymised"]:
            parts.append(f"{t['pseudonymised']} pseudonymised ({', '.join(t['fields_changed'])})")
        lines.append(head + (": " + "; ".join(parts) if parts else ""))
        for k in t["kept"]:
            until = f" until {k['until']}" if k.get("until") else ""
            lines.append(f"    kept {k['rows']}{until}: {k['why']}")
        for u in t["unchanged"]:
            lines.append(f"    unchanged {u['rows']}: {u['reason']}")
        for note in t["notes"]:
            lines.append(f"    note: {note}")
    recipients = receipt.get("recipients") or []
    if recipients:
        lines += ["", "Recipients to tell (GDPR Art 19):"]
        for r in recipients:  # type: ignore[union-attr]
            what = f" ({'; '.join(r['data'])})" if r.get("data") else ""
            when = f", last shared {r['last_shared']}" if r.get("last_shared") else ""
            lines.append(f"    {r['recipient']}{what}: {r['records']} record{'s' if r['records'] != 1 else ''}{when}")
    for name in ("restriction", "suppression", "export"):
        part = receipt.get(name)
        if part:
            lines += ["", f"{name}: " + "; ".join(f"{k} {v}" for k, v in part.items())]  # type: ignore[union-attr]
    verification = receipt.get("verification")
    if verification:
        ok = verification.get("passed")  # type: ignore[union-attr]
        lines += ["", "verification: " + ("passed" if ok else "FAILED: " + "; ".join(verification["problems"]))]  # type: ignore[index]
    return "\n".join(lines) + "\n"


# --- carrying out one request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    request_id: int
    status: RequestStatus
    summary: str
    receipt: dict[str, object] | None


def _iso(moment: dt.datetime | None, tz: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def carry_out_request(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    request_id: int,
    *,
    run_id: str,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> RequestOutcome:
    """Claim the request, lock the person, read the estate, act, store the receipt and drop the identifiers.

    A request another run is carrying out, or one already done, is left alone. If a second request for the
    same person is running, this one waits for it; if that only shows after reading the estate, the request
    goes back to the queue under a new attempt, so the sensor launches it again.
    """
    control = estate.control
    assert control is not None
    ensure_schema(control)
    ensure_request_schema(control)
    settings = load_request_settings(config)
    purge_exports(settings)
    request = get_request(control, request_id)
    if request is None:
        raise ValueError(f"there is no request #{request_id}; `retention request list` shows the register")
    if not claim_request(control, request_id, run_id):
        return RequestOutcome(request_id, request.status, f"request #{request_id} is {request.status.value}", None)
    request = get_request(control, request_id)
    assert request is not None
    stale = dt.timedelta(hours=settings.stale_lock_hours)
    try:
        pre_keys = person_keys(control, request.tokens)
        try:
            acquire_locks(control, request_id, pre_keys, wait_seconds=settings.lock_wait_seconds, stale_after=stale)
        except LockBusy:
            requeue_request(control, request_id, "another request for the same person ran too long; queued again")
            return RequestOutcome(request_id, RequestStatus.PENDING, "queued again: person busy", None)
        view = read_person(config, estate, keyring, request.tokens, progress)
        match = find_person(view, control, request, keyring)
        extra = set(match.subjects) - set(pre_keys)
        if extra:
            try:
                acquire_locks(control, request_id, [*pre_keys, *extra], wait_seconds=0, stale_after=stale)
            except LockBusy:
                requeue_request(control, request_id, "another request for the same person was running; queued again")
                return RequestOutcome(request_id, RequestStatus.PENDING, "queued again: person busy", None)
        receipt = _act(
            config, estate, keyring, settings, request, view, match, run_id=run_id, now=now, progress=progress
        )
    except Exception as exc:
        fail_request(control, request_id, f"failed: {type(exc).__name__}; see the run's log")
        raise
    passed = receipt.get("verification", {}).get("passed", True)  # type: ignore[union-attr]
    if not passed:
        fail_request(control, request_id, "verification failed after apply; see the receipt in the run's log")
        return RequestOutcome(request_id, RequestStatus.FAILED, str(receipt["summary"]), receipt)
    completed = dt.datetime.now(dt.UTC)
    receipt["completed_at"] = _iso(completed, config.policy.timezone)
    complete_request(control, request_id, match.subjects, str(receipt["summary"]), receipt)
    release_locks(control, request_id)
    return RequestOutcome(request_id, RequestStatus.DONE, str(receipt["summary"]), receipt)


def _act(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    settings: RequestSettings,
    request: SubjectRequest,
    view: EstateView,
    match: Match,
    *,
    run_id: str,
    now: dt.datetime | None,
    progress: Progress | None,
) -> dict[str, object]:
    control = estate.control
    assert control is not None
    tz = config.policy.timezone
    moment = now or dt.datetime.now(dt.UTC)
    receipt: dict[str, object] = {
        "request": request.request_id,
        "kind": request.kind.value,
        "received_at": _iso(request.received_at, tz),
        "deadline": _iso(request.deadline, tz),
        "completed_at": None,
        "run_id": run_id,
        "identifiers_given": list(request.identifier_kinds),
        "matched_by": list(match.kinds_matched),
        "found": bool(match.subjects) and not match.ambiguous,
        "subjects": sorted(match.subjects),
        "tables": [],
        "recipients": [],
    }
    subjects = set(match.subjects)
    if match.ambiguous:
        receipt["summary"] = (
            f"The identifiers given belong to {len(subjects)} different people in our databases, so nothing was "
            "changed or disclosed. Register a new request with the identifiers of one person."
        )
        return receipt
    kind = request.kind
    if kind is RequestKind.MARKETING_OBJECTION:
        suppressed_tokens = [*request.tokens, *(t for t, s in view.index.tokens.items() if s in subjects)]
        added = add_suppressions(control, request.request_id, subjects, suppressed_tokens)
        receipt["suppression"] = {
            "entries added": added,
            "honoured by": "the daily run, which removes marketing rows of people on the list",
        }
    if not subjects:
        receipt["summary"] = "Nothing was found about this person in our databases." + (
            " The identifiers given are on the marketing suppression list, so they will not be used for marketing."
            if kind is RequestKind.MARKETING_OBJECTION
            else ""
        )
        return receipt
    if kind in (RequestKind.ERASURE, RequestKind.MARKETING_OBJECTION):
        return _erase_or_object(
            config, estate, keyring, settings, request, view, subjects, receipt, run_id, moment, progress
        )
    if kind is RequestKind.ACCESS:
        recipients = recipients_of(config, settings, estate, view, subjects)
        receipt["recipients"] = recipients
        export = write_export(
            config,
            estate,
            view,
            subjects,
            request.request_id,
            settings,
            recipients,
            now=moment,
            holds=load_holds(control),
        )
        receipt["export"] = export.receipt()
        receipt["tables"] = export.table_counts()
        receipt["summary"] = (
            f"An export of {_rows(export.rows)} in {len(export.tables)} tables was written; hand it to the person. "
            f"It is removed on {export.expires.isoformat()}."
        )
        return receipt
    return _restrict(control, view, subjects, request, receipt, moment)


def _erase_or_object(
    config: EstateConfig,
    estate: Estate,
    keyring: Keyring,
    settings: RequestSettings,
    request: SubjectRequest,
    view: EstateView,
    subjects: set[str],
    receipt: dict[str, object],
    run_id: str,
    moment: dt.datetime,
    progress: Progress | None,
) -> dict[str, object]:
    control = estate.control
    assert control is not None
    holds = load_holds(control)
    person = plan_for_person(
        config,
        view,
        subjects,
        request.kind,
        label=request_label(request.kind, request.request_id),
        now=moment,
        holds=holds,
        done=load_done(control),
        known=load_known_subjects(control),
        settings=settings,
    )
    if request.kind is RequestKind.ERASURE:
        receipt["recipients"] = recipients_of(config, settings, estate, view, subjects)
    applied = apply_person_plan(config, estate, keyring, person.plan, run_id=run_id, progress=progress)
    receipt["tables"] = table_receipts(person.decisions, applied)
    receipt["verification"] = {"passed": not applied.problems, "problems": applied.problems}
    deleted = sum(int(t["deleted"]) for t in receipt["tables"])  # type: ignore[union-attr]
    changed = sum(int(t["pseudonymised"]) for t in receipt["tables"])  # type: ignore[union-attr]
    kept = sum(int(k["rows"]) for t in receipt["tables"] for k in t["kept"])  # type: ignore[union-attr]
    if request.kind is RequestKind.ERASURE:
        lifted = _lift_restrictions(control, subjects, moment)
        if lifted:
            receipt["restriction"] = {"lifted": lifted, "why": "the erasure supersedes the restriction"}
        receipt["summary"] = (
            f"Erased: {_rows(deleted)} deleted and {_rows(changed)} pseudonymised; {_rows(kept)} kept because the law "
            "requires it (see below)."
        )
    else:
        receipt["summary"] = (
            f"Marketing stopped: {_rows(deleted)} deleted and {_rows(changed)} cleared of marketing fields; "
            "administrative data is untouched and the person is on the suppression list."
        )
    return receipt


def _lift_restrictions(control: sa.Engine, subjects: Collection[str], moment: dt.datetime) -> int:
    with control.begin() as conn:
        result = conn.execute(
            restrictions.update()
            .where(restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None))
            .values(lifted_at=moment)
        )
        return int(result.rowcount)


def _restrict(
    control: sa.Engine,
    view: EstateView,
    subjects: set[str],
    request: SubjectRequest,
    receipt: dict[str, object],
    moment: dt.datetime,
) -> dict[str, object]:
    """Restriction (Art 18): the daily plan holds every row of the person until the restriction is lifted."""
    restricting = request.kind is RequestKind.RESTRICTION
    found = {tid: len(rows) for tid in view.tagged if not (rows := view.rows_of(tid, subjects)).empty}
    receipt["tables"] = [
        {
            "source": s,
            "table": t,
            "rows_found": n,
            "deleted": 0,
            "pseudonymised": 0,
            "fields_changed": [],
            "kept": [{"reason": "restriction", "rows": n, "until": None, "why": "restricted: stored only (Art 18)"}]
            if restricting
            else [],
            "unchanged": [],
            "notes": [],
        }
        for (s, t), n in found.items()
    ]
    rows = sum(found.values())
    with control.begin() as conn:
        active = set(
            conn.execute(
                sa.select(restrictions.c.subject).where(
                    restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None)
                )
            ).scalars()
        )
        if restricting:
            new = sorted(subjects - active)
            if new:
                conn.execute(
                    restrictions.insert(),
                    [{"subject": s, "request_id": request.request_id, "placed_at": moment} for s in new],
                )
            receipt["restriction"] = {"placed": len(new), "already in force": len(subjects & active)}
            receipt["summary"] = (
                f"Restricted: the {_rows(rows)} found are only stored from now on; the daily run plans nothing for "
                "them (reported as held: restriction) until the restriction is lifted."
            )
            return receipt
        lifted = conn.execute(
            restrictions.update()
            .where(restrictions.c.subject.in_(list(subjects)), restrictions.c.lifted_at.is_(None))
            .values(lifted_at=moment)
        ).rowcount
    receipt["restriction"] = {"lifted": int(lifted)}
    receipt["summary"] = (
        f"Restriction lifted: the {_rows(rows)} found follow the retention schedule again from the next daily run."
        if lifted
        else "There was no restriction in force for this person; nothing changed."
    )
    return receipt


def suppressed_subjects(index: SubjectIndex, suppressions: Suppressions) -> dict[str, int]:
    """subject -> request id of everyone on the suppression list, by subject key or identifier token."""
    found = {s: suppressions.rules[s] for s in suppressions.subjects}
    for token in suppressions.tokens:
        subject = index.tokens.get(token)
        if subject is not None:
            found.setdefault(subject, suppressions.rules[token])
    return found


def plan_suppression(
    config: EstateConfig,
    view: EstateView,
    suppressions: Suppressions,
    settings: RequestSettings,
    daily: Plan,
    *,
    holds: Holds,
    done: Mapping[TableId, Collection[tuple[object, str]]],
    known: Mapping[TableId, pd.DataFrame],
) -> PersonPlan | None:
    """The daily run's part of honouring objections: marketing rows of people on the suppression list that
    appeared again (a new sign-up, a restored backup) are removed, except what the daily plan already deletes."""
    subjects = suppressed_subjects(view.index, suppressions)
    if not subjects or not settings.marketing_purposes:
        return None
    skip = {
        tid: set(entries.loc[entries["action"] == Action.DELETE.value, "pk"])
        for tid, entries in daily.entries.items()
        if not entries.empty
    }
    moment = end_of_day(daily.as_of, config.policy.timezone).to_pydatetime()
    return plan_for_person(
        config,
        view,
        set(subjects),
        RequestKind.MARKETING_OBJECTION,
        label=SUPPRESSION_LABEL,
        now=moment,
        holds=holds,
        done=done,
        known=known,
        settings=settings,
        skip=skip,
    )


def request_summary(request: SubjectRequest) -> dict[str, object]:
    """A value-free description of a request for Dagster metadata and tags."""
    return {
        "request": request.request_id,
        "kind": request.kind.value,
        "status": request.status.value,
        "identifier kinds": ",".join(request.identifier_kinds),
    }

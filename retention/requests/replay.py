"""Replay after a backup restore: re-apply to a restored database every deletion, pseudonymisation and clearing
the ledger recorded that the backup does not hold, so that a restored backup does not bring erased people back.

Which batches to replay is decided by the restored database itself: every applied batch writes its id into
the source's marker table in the same transaction as its changes, so a batch whose id the restored marker
table lacks happened after the backup. Those batches are re-applied in their original order, under their
original ids and with the key they were made with, and each row is matched by primary key and its subject key
checked. Pseudonyms are deterministic for (key, subject key) and tokens for (key, value), and every batch sees
the same database state as the first time, so replay writes exactly the values the first apply wrote.
Replaying twice changes nothing: the second time every batch is already there.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from retention.apply.applier import SourceApplier
from retention.config.keys import KeyError_, Keyring
from retention.config.loading import EstateConfig
from retention.rules import columns
from retention.rules.calendar import utc
from retention.rules.identity import tokenise_series
from retention.storage.control import shared_among
from retention.storage.frames import rows_frame
from retention.storage.leases import LeaseBusy, holding, lease_seconds, source_lease
from retention.storage.marker import marker
from retention.storage.schema import DONE, ensure_schema, ledger, ledger_batches, replays, subject_tokens
from retention.storage.subject_index import forget_source


class ReplayError(Exception):
    """Replay cannot run; the message says why and what to do."""


@dataclass
class TableReplay:
    deleted: int = 0
    updated: int = 0
    missing: int = 0  # rows the restored database does not hold (nothing to re-apply)
    mismatched: int = 0  # rows whose subject key does not match the ledger's: left alone, reported


@dataclass
class ReplayResult:
    source: str
    since: dt.date
    """The day of the first batch the restored database lacked (what was replayed from)."""
    since_was_late: bool = False
    """The day the operator gave was later than that: the earlier batches were replayed too."""
    batches_replayed: int = 0
    batches_already_there: int = 0
    recovered_batches: int = 0
    tables: dict[str, TableReplay] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t.deleted + t.updated for t in self.tables.values())

    @property
    def mismatched(self) -> int:
        return sum(t.mismatched for t in self.tables.values())


def replay_source(
    config: EstateConfig,
    source: str,
    engine: sa.Engine,
    control: sa.Engine,
    keyring: Keyring,
    since: dt.date | None = None,
    *,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Re-apply to `source` every batch the ledger holds as applied there and its marker table lacks.

    `since` (the day the backup was taken, as the operator remembers it) is only checked: a batch missing from
    before it is replayed all the same, since leaving it out would bring its people back, and the result says
    so (`since_was_late`). The source's lease is held throughout: no daily run or request writes meanwhile.
    The source's rows are those of the backup from now on, not those the subject index saw: requests read its
    tables whole until the next daily run indexes them again."""
    if source not in config.catalog.sources:
        raise ReplayError(f"unknown source {source!r}; the catalog has {', '.join(config.catalog.sources)}")
    ensure_schema(control)
    try:
        with holding(control, [source_lease(source)], run_id, seconds=lease_seconds(), what=f"the {source} database"):
            forget_source(control, source)
            return _replay(config, source, engine, control, keyring, since, run_id=run_id, progress=progress)
    except LeaseBusy as busy:
        raise ReplayError(f"{busy}; replay once that run has ended") from None


def _replay(
    config: EstateConfig,
    source: str,
    engine: sa.Engine,
    control: sa.Engine,
    keyring: Keyring,
    since: dt.date | None,
    *,
    run_id: str,
    progress: Callable[[str], None] | None,
) -> ReplayResult:
    say = progress or (lambda _m: None)
    tz = config.policy.timezone
    started = dt.datetime.now(dt.UTC)
    with control.connect() as conn:
        done = conn.execute(
            sa.select(ledger_batches.c.batch_id, ledger_batches.c.applied_at)
            .where(ledger_batches.c.source == source, ledger_batches.c.status == DONE)
            .order_by(ledger_batches.c.batch_no)
        ).all()
    present = _present_batches(engine, [batch_id for batch_id, _ in done])
    missing = [(batch_id, utc(when).astimezone(tz).date()) for batch_id, when in done if batch_id not in present]
    first = min((day for _, day in missing), default=None)
    result = ReplayResult(source, first or since or started.astimezone(tz).date())
    result.since_was_late = since is not None and first is not None and first < since
    with control.begin() as conn:
        inserted = conn.execute(
            replays.insert().values(source=source, since=result.since, started_at=started, status="running")
        ).inserted_primary_key
        assert inserted is not None, "a single-row insert reports its primary key"
        replay_id = inserted[0]
    applier = SourceApplier(config, source, engine, control, keyring, run_id=run_id, as_of=started.date())
    result.recovered_batches = applier.recover()
    todo = [batch_id for batch_id, _ in missing]
    batches: dict[str, list[sa.RowMapping]] = defaultdict(list)
    with control.connect() as conn:
        for i in range(0, len(todo), 1000):
            for row in conn.execute(
                sa.select(ledger).where(ledger.c.batch_id.in_(todo[i : i + 1000])).order_by(ledger.c.entry_id)
            ).mappings():
                batches[row["batch_id"]].append(row)
    result.batches_already_there = len(present)
    say(f"{len(todo)} batches to replay, {len(present)} already in the restored database")
    allowed = _restored_subjects(config, applier, control, keyring, [r for b in todo for r in batches[b]], present)
    for batch_id in todo:
        batch = batches[batch_id]
        if not batch:
            continue  # a batch that recorded no entry changed nothing
        table = batch[0]["table_name"]
        outcome = result.tables.setdefault(table, TableReplay())
        chosen = []
        for r in batch:
            subjects = allowed.get((table, r["pk"]))
            if subjects is None:
                outcome.missing += 1
            elif r["subject"] not in subjects:
                outcome.mismatched += 1
            else:
                chosen.append(r)
        try:
            applier.reapply(table, chosen, batch_id, batch[0]["key_id"])
        except KeyError_ as exc:
            raise ReplayError(str(exc)) from None
        deleted = {r["pk"] for r in chosen if r["action"] == "delete"}
        outcome.deleted += len(deleted)
        outcome.updated += len({r["pk"] for r in chosen} - deleted)
        result.batches_replayed += 1
    with control.begin() as conn:
        conn.execute(
            replays.update()
            .where(replays.c.replay_id == replay_id)
            .values(
                finished_at=dt.datetime.now(dt.UTC),
                batches_replayed=result.batches_replayed,
                batches_already_there=result.batches_already_there,
                rows=result.rows,
                mismatched_rows=result.mismatched,
                status="done" if not result.mismatched else "mismatches",
            )
        )
    return result


def _present_batches(engine: sa.Engine, batch_ids: list[str]) -> set[str]:
    """Batch ids the restored database already holds (its marker table came back with the backup)."""
    if not batch_ids or not sa.inspect(engine).has_table(marker.name):
        return set()
    found: set[str] = set()
    with engine.connect() as conn:
        for i in range(0, len(batch_ids), 1000):
            found |= set(
                conn.execute(sa.select(marker.c.batch_id).where(marker.c.batch_id.in_(batch_ids[i : i + 1000])))
                .scalars()
                .all()
            )
    return found


def _restored_subjects(
    config: EstateConfig,
    applier: SourceApplier,
    control: sa.Engine,
    keyring: Keyring,
    entries: list[sa.RowMapping],
    present: set[str],
) -> dict[tuple[str, str], set[str]]:
    """(table, pk as text) -> the subject keys the restored row may belong to; rows not restored are absent.

    A row's person is read from the identifiers of the row that carries them (the row itself or its nearest
    ancestor): every one of their keyed tokens must lead to the same subject key the index remembers, so a
    row whose identifiers disagree, or are partly unknown, is not trusted. Where none of the identifiers is
    known because they were pseudonymised before the backup, the subject the ledger recorded for that row in
    a batch the restored database holds counts.
    """
    catalog = config.catalog
    source = applier.source
    wanted: dict[str, set[str]] = defaultdict(set)
    for r in entries:
        wanted[r["table_name"]].add(r["pk"])
    allowed: dict[tuple[str, str], set[str]] = {}
    for table, pk_texts in wanted.items():
        chain = catalog.parent_chain(source, table)
        root = chain[-1]
        identifiers = catalog.table(source, root).subject.identifiers
        tables = [applier.table(t) for t in chain]
        key, root_key = applier.row_key(table), applier.row_key(root)
        selected = [
            *key.selected(tables[0]),
            *root_key.selected(tables[-1], "root_pk"),
            *(tables[-1].c[col].label(columns.identifier(kind.value)) for kind, col in identifiers.items()),
        ]
        query = sa.select(*selected).select_from(tables[0])
        for child, parent in itertools.pairwise(tables):
            link = catalog.table(source, child.name).subject
            assert link.foreign_key is not None, "a table with a parent has a foreign key (catalog validation)"
            query = query.join(parent, child.c[link.foreign_key] == parent.c[catalog.table(source, parent.name).pk])
        pks = [applier.typed_pk(table, pk) for pk in pk_texts]
        frames = []
        with applier.engine.connect() as conn:
            for i in range(0, len(pks), 1000):
                chunk = pks[i : i + 1000]
                part = conn.execute(query.where(key.match(conn, tables[0], chunk))).all()
                frames.append(rows_frame(part, [c.name for c in selected]))
        found = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if found.empty:
            continue
        found = root_key.joined(key.joined(found), "root_pk")
        token_cols = []
        for kind in identifiers:
            name = columns.identifier(kind.value)
            found[name] = tokenise_series(keyring.subject, kind, found[name].astype(object), catalog.region_of(source))
            token_cols.append(name)
        tokens = sorted({t for c in token_cols for t in found[c].dropna()})
        by_token = _token_subjects(control, tokens)
        earlier = _ledger_subjects(control, source, root, [str(p) for p in found["root_pk"]], present)
        root_pks = [str(p) for p in found["root_pk"]]
        with control.connect() as conn:
            shared = shared_among(conn, tokens)
        token_values = [found[c].tolist() for c in token_cols]
        for i, pk in enumerate(found["pk"].tolist()):
            # a phone several people share ties the row to nobody: it neither confirms nor contradicts
            tokens_here = [col[i] for col in token_values if isinstance(col[i], str) and col[i] not in shared]
            mapped = {by_token.get(t) for t in tokens_here}
            if not tokens_here or mapped == {None}:
                allowed[(table, str(pk))] = earlier.get(root_pks[i], set())
            else:
                subjects = {s for s in mapped if s is not None}
                allowed[(table, str(pk))] = subjects if len(mapped) == 1 and None not in mapped else set()
    return allowed


def _token_subjects(control: sa.Engine, tokens: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with control.connect() as conn:
        for i in range(0, len(tokens), 1000):
            found.update(
                conn.execute(
                    sa.select(subject_tokens.c.token, subject_tokens.c.subject).where(
                        subject_tokens.c.token.in_(tokens[i : i + 1000])
                    )
                ).all()
            )
    return found


def _ledger_subjects(
    control: sa.Engine, source: str, table: str, pks: list[str], present: set[str]
) -> dict[str, set[str]]:
    """Subjects the ledger recorded for rows changed in batches the restored database already holds."""
    found: dict[str, set[str]] = defaultdict(set)
    with control.connect() as conn:
        for i in range(0, len(pks), 1000):
            rows = conn.execute(
                sa.select(ledger.c.pk, ledger.c.subject, ledger.c.batch_id).where(
                    ledger.c.source == source,
                    ledger.c.table_name == table,
                    ledger.c.pk.in_(pks[i : i + 1000]),
                    ledger.c.action != "delete",
                )
            )
            for pk, subject, batch_id in rows:
                if batch_id in present:
                    found[pk].add(subject)
    return found

"""Writing one run's ledger batches to the control database: entries, the batch row, and 'done' marks."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa

from retention.apply.batches import Batch
from retention.config.policy import Policy
from retention.storage.bulk import insert_columns
from retention.storage.engines import control_engine
from retention.storage.schema import DONE, PENDING, ledger_batches, ledger_entries, ledger_rules

Rule = tuple[str, str, str]  # purpose, rule, legal basis


class LedgerError(RuntimeError):
    """The ledger could not be written: no batch it does not record has touched the source."""


class LedgerWriter:
    """Writes one run's ledger batches for one source. It pickles, the control database's engine as its URL,
    so that a writer process (`retention.apply.writer_process`) writes with its own connections."""

    def __init__(self, control: sa.Engine, policy: Policy, *, run_id: str, as_of: dt.date, source: str, key_id: str):
        self.control = control
        self.run_id = run_id
        self.as_of = as_of
        self.source = source
        self.key_id = key_id
        self._by_purpose = {
            name: (name, f"{name}: {p.clock.value} + {p.period}, then {p.action.value}"[:200], p.legal_basis[:250])
            for name, p in policy.purposes.items()
        }
        self._rule_ids: dict[Rule, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "control": self.control.url.render_as_string(hide_password=False)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, control=control_engine(state["control"]))

    def rules(self, entries: pd.DataFrame) -> list[Rule]:
        """(purpose, rule, legal basis) of each entry. Entries may carry their own 'rule' and 'legal_basis'
        (subject requests); otherwise both come from the policy's purpose."""
        purposes = entries["purpose"].tolist()
        if self._own_rules(entries):
            rules = entries["rule"].astype(str).str.slice(0, 200).tolist()
            bases = entries["legal_basis"].astype(str).str.slice(0, 250).tolist()
            return list(zip(purposes, rules, bases, strict=True))
        return [self._by_purpose[p] for p in purposes]

    @staticmethod
    def _own_rules(entries: pd.DataFrame) -> bool:
        return "rule" in entries.columns and "legal_basis" in entries.columns

    def _distinct_rules(self, entries: pd.DataFrame) -> set[Rule]:
        if self._own_rules(entries):
            return set(self.rules(entries))
        return {self._by_purpose[p] for p in entries["purpose"].unique()}

    def add_rules(self, entries: Iterable[pd.DataFrame]) -> None:
        """Make sure `ledger_rules` holds the rules of these entries and learn their ids. Each new rule is
        added in its own transaction: another run may add the same rule at the same time, and the unique
        constraint then keeps one."""
        missing = {rule for frame in entries for rule in self._distinct_rules(frame)} - self._rule_ids.keys()
        if not missing:
            return
        for purpose, rule, basis in missing:
            with contextlib.suppress(sa.exc.IntegrityError), self.control.begin() as conn:
                conn.execute(ledger_rules.insert().values(purpose=purpose, rule=rule, legal_basis=basis))
        with self.control.connect() as conn:
            known = conn.execute(sa.select(ledger_rules).where(ledger_rules.c.purpose.in_({m[0] for m in missing})))
            self._rule_ids.update({(r.purpose, r.rule, r.legal_basis): r.rule_id for r in known})

    def _rule_id_column(self, entries: pd.DataFrame) -> list[int]:
        if self._own_rules(entries):
            return [self._rule_ids[rule] for rule in self.rules(entries)]
        return _each_once(lambda purpose: self._rule_ids[self._by_purpose[purpose]], entries["purpose"].tolist())

    def write(self, batch: Batch, done: list[str]) -> None:
        """The batch's 'pending' row and one entry per plan entry, in one transaction that also sets the
        batches in `done` (committed by the source since the last write) 'done'. The entries' rules must have
        been added (`add_rules`)."""
        entries = batch.entries
        columns = {
            "rule_id": self._rule_id_column(entries),
            "pk": list(map(str, entries["pk"].tolist())),
            "subject": entries["subject"].tolist(),
            "action": entries["action"].tolist(),
            "fields": _each_once(lambda names: ",".join(names), entries["fields"].tolist()),
        }
        with self.control.begin() as conn:
            _set_done(conn, done)
            inserted = conn.execute(
                ledger_batches.insert().values(
                    batch_id=batch.batch_id,
                    run_id=self.run_id,
                    as_of=self.as_of,
                    source=self.source,
                    table_name=batch.table,
                    key_id=self.key_id,
                    applied_at=dt.datetime.now(dt.UTC),
                    status=PENDING,
                )
            )
            assert inserted.inserted_primary_key is not None
            batch_no = inserted.inserted_primary_key[0]
            insert_columns(conn, ledger_entries, {"batch_no": [batch_no] * len(entries), **columns})

    def mark_done(self, done: list[str]) -> None:
        if done:
            with self.control.begin() as conn:
                _set_done(conn, done)


def _each_once(function: Callable[[Any], Any], values: list) -> list:
    """`function` of each value, computed once per distinct value (a batch's entries share a few purposes and
    field lists)."""
    results = {value: function(value) for value in dict.fromkeys(values)}
    return [results[value] for value in values]


def _set_done(conn: sa.Connection, done: list[str]) -> None:
    if done:
        conn.execute(ledger_batches.update().where(ledger_batches.c.batch_id.in_(done)).values(status=DONE))

"""How a batch's plan entries become per-row operations: a delete wins, a cleared field is not also
pseudonymised, rows are grouped by the set of fields they change."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from retention.apply.operations import row_operations
from retention.config.policy import Action

FIELDS = ("a", "b", "c")
entry = st.tuples(
    st.integers(0, 12),
    st.sampled_from([a.value for a in Action]),
    st.lists(st.sampled_from(FIELDS), max_size=3).map(tuple),
)


def expected(rows: list[tuple[int, str, tuple[str, ...]]]) -> tuple[set, dict, dict]:
    """The rule written out row by row."""
    actions: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    deletes = set()
    for pk, action, fields in rows:
        if action == Action.DELETE.value:
            deletes.add(pk)
        else:
            actions[pk][action].update(fields)
    clears: dict[tuple[str, ...], set[int]] = defaultdict(set)
    pseudos: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for pk, by in actions.items():
        if pk in deletes:
            continue
        cleared = by.get(Action.CLEAR.value, set())
        rest = by.get(Action.PSEUDONYMISE.value, set()) - cleared
        if cleared:
            clears[tuple(sorted(cleared))].add(pk)
        if rest:
            pseudos[tuple(sorted(rest))].add(pk)
    return deletes, dict(clears), dict(pseudos)


@given(st.lists(entry, min_size=1, max_size=30))
def test_operations_follow_the_merge_rule(rows: list[tuple[int, str, tuple[str, ...]]]) -> None:
    frame = pd.DataFrame(rows, columns=["pk", "action", "fields"])
    frame["subject"] = [f"s{pk}" for pk in frame["pk"]]
    ops = row_operations(frame)
    deletes, clears, pseudos = expected(rows)
    assert len(ops.deletes) == len(set(ops.deletes))
    assert set(ops.deletes) == deletes
    assert {k: set(v) for k, v in ops.clears.items()} == clears
    assert {k: set(v) for k, v in ops.pseudonymise.items()} == pseudos
    assert all(len(v) == len(set(v)) for v in [*ops.clears.values(), *ops.pseudonymise.values()])


def test_one_entry_per_row_and_many_entries_per_row_agree() -> None:
    single = pd.DataFrame(
        {"pk": [1, 2, 3], "action": ["pseudonymise", "clear", "delete"], "fields": [("b", "a"), ("c",), ()]}
    )
    single["subject"] = "s"
    doubled = pd.concat([single, single.iloc[:1]], ignore_index=True)
    for frame in (single, doubled):
        ops = row_operations(frame)
        assert (ops.deletes, ops.clears, ops.pseudonymise) == ([3], {("c",): [2]}, {("a", "b"): [1]})

"""Turning a batch's plan entries into per-row operations: deletes, cleared fields, pseudonymised fields."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retention.config.policy import Action


@dataclass
class RowOperations:
    """Per-row operations of one batch of one table."""

    deletes: list[object]
    clears: dict[tuple[str, ...], list[object]]  # fields -> pks
    pseudonymise: dict[tuple[str, ...], list[object]]  # fields -> pks
    subjects: dict[object, str]


DELETE, CLEAR = Action.DELETE.value, Action.CLEAR.value


def row_operations(entries: pd.DataFrame) -> RowOperations:
    """Merge a row's entries: a delete wins; a field both cleared and pseudonymised is cleared."""
    pks = entries["pk"].tolist()
    actions = entries["action"].to_numpy(dtype=object)
    deleting = actions == DELETE
    if deleting.all():
        return RowOperations(list(dict.fromkeys(pks)), {}, {}, {})
    fields = entries["fields"].tolist()
    subjects = dict(zip(pks, entries["subject"].tolist(), strict=True))
    if len(subjects) == len(pks):  # one entry per row, the usual case: nothing to merge, only grouping
        keys = np.array(pks, dtype=object)
        codes, field_lists = pd.factorize(pd.Series(fields, dtype=object))
        clearing = actions == CLEAR
        grouped: dict[bool, dict[tuple[str, ...], list[object]]] = {True: {}, False: {}}
        for clear, rows in ((True, clearing), (False, ~clearing & ~deleting)):
            for code in pd.unique(codes[rows]):
                names = tuple(sorted(set(field_lists[code])))
                if names:
                    grouped[clear].setdefault(names, []).extend(keys[rows & (codes == code)].tolist())
        return RowOperations(keys[deleting].tolist(), grouped[True], grouped[False], subjects)
    deleted: set[object] = set()
    clear_fields: dict[object, set[str]] = defaultdict(set)
    pseudo_fields: dict[object, set[str]] = defaultdict(set)
    for pk, action, names in zip(pks, actions, fields, strict=True):
        if action == DELETE:
            deleted.add(pk)
        elif action == CLEAR:
            clear_fields[pk].update(names)
        else:
            pseudo_fields[pk].update(names)
    clears: dict[tuple[str, ...], list[object]] = defaultdict(list)
    pseudos: dict[tuple[str, ...], list[object]] = defaultdict(list)
    for pk in dict.fromkeys([*clear_fields, *pseudo_fields]):
        if pk in deleted:
            continue
        cleared = clear_fields.get(pk, set())
        if cleared:
            clears[tuple(sorted(cleared))].append(pk)
        rest = pseudo_fields.get(pk, set()) - cleared
        if rest:
            pseudos[tuple(sorted(rest))].append(pk)
    return RowOperations([pk for pk in dict.fromkeys(pks) if pk in deleted], dict(clears), dict(pseudos), subjects)

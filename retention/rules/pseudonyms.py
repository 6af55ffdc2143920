"""One surrogate identity per person, forever: a field the ledger already changed is never pseudonymised again.

A second pseudonymisation would give the person a second, different surrogate (another name, e-mail and
phone) and break the tokens that prove consent. A later purpose may still clear the field or delete the row.
Used by the daily plan and by subject requests alike.
"""

from __future__ import annotations

import pandas as pd

from retention.config.policy import Action


def changed_fields(changed: pd.DataFrame | None, pks: pd.Series) -> dict[str, frozenset[str]]:
    """Fields the ledger already changed per row (pk as text), from `load_known_subjects`' frame of a table."""
    if changed is None or changed.empty or pks.empty:
        return {}
    wanted = changed[changed["pk"].isin(set(pks.astype(str)))]
    return dict(zip(wanted["pk"], wanted["fields"], strict=True))


def not_pseudonymised_again(entries: pd.DataFrame, changed: pd.DataFrame | None) -> pd.DataFrame:
    """Plan entries without the fields a pseudonymisation would change a second time; an entry left with no
    field goes. Clearing and deleting entries are left as they are."""
    if entries.empty:
        return entries
    pseudonymise = (entries["action"] == Action.PSEUDONYMISE.value).to_numpy()
    before = changed_fields(changed, entries.loc[pseudonymise, "pk"])
    if not before:
        return entries
    fields = [
        tuple(f for f in fs if f not in before.get(str(pk), ())) if p else fs
        for pk, fs, p in zip(entries["pk"], entries["fields"], pseudonymise, strict=True)
    ]
    kept = entries.assign(fields=fields)
    return kept[[bool(fs) or not p for fs, p in zip(fields, pseudonymise, strict=True)]].reset_index(drop=True)

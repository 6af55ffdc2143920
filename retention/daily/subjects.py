"""The subject index: one subject per person across the estate, and each subject's last interaction.

Rows that share a strong identifier token (e-mail, customer number) are one person, and so are rows joined by a
weak one (a phone) unless it would join people whose strong identifiers differ; rows without identifiers belong
to the person of their parent row. Connected components of the row-token graph give the
groups; each group's subject key is keyed from its smallest token, so it stays the same across runs and days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from anonymizers.keys import Key
from retention.config.catalog import Catalog, TableEntry, TableId
from retention.daily.snapshot import SourceSnapshot, TableSnapshot
from retention.rules import columns
from retention.rules.identity import subject_key


@dataclass(frozen=True)
class SubjectIndex:
    """`rows[(source, table)]` is a Series pk -> subject key; `subjects` has subject, last_interaction, sources."""

    rows: dict[TableId, pd.Series]
    subjects: pd.DataFrame
    tokens: dict[str, str] = field(default_factory=dict, repr=False)  # identifier token -> subject key
    ambiguous: frozenset[str] = field(default=frozenset(), repr=False)
    """Weak identifier tokens shared by different people (an office phone): they point at nobody."""
    changed: Mapping[TableId, pd.DataFrame] = field(default_factory=dict, repr=False)
    """The ledger's changed rows the index was built with (`load_known_subjects`): the plan needs them too."""

    def subject_of(self, source: str, table: str) -> pd.Series:
        return self.rows[(source, table)]

    @property
    def last_interaction(self) -> pd.Series:
        return self.subjects.set_index("subject")["last_interaction"]


def interaction_moments(snap: TableSnapshot, columns: list[str]) -> pd.Series:
    """The latest interaction timestamp of each row; a date-only column counts until the end of its day."""
    if not columns:
        return pd.Series(pd.NaT, index=snap.frame.index, dtype="datetime64[us, UTC]")
    stamps = pd.concat(
        [snap.frame[c] + pd.Timedelta(days=1) if c in snap.date_only else snap.frame[c] for c in columns], axis=1
    )
    return stamps.max(axis=1).astype("datetime64[us, UTC]")


KNOWN = "!"  # sorts before every identifier token, so a known subject anchors its group
KNOWN_TOKEN = columns.identifier("known")  # the subject a row had when the ledger changed it, as one more token


def _with_known(frame: pd.DataFrame, entry: TableEntry, known: pd.DataFrame | None) -> pd.DataFrame:
    """Rows the ledger already acted on keep the subject recorded then: their replaced identifiers no longer
    count (a surrogate must not link anyone), and the recorded subject becomes one more token of the row."""
    frame = frame.assign(**{KNOWN_TOKEN: None})
    if known is None or known.empty:
        return frame
    by_pk = known.set_index("pk")
    pks = frame["pk"].astype(str)
    hit = pks.isin(by_pk.index).to_numpy()
    if not hit.any():
        return frame
    frame = frame.copy()
    rows = by_pk.loc[pks[hit]]
    frame.loc[hit, KNOWN_TOKEN] = (KNOWN + rows["subject"]).to_numpy()
    for kind, column in entry.subject.identifiers.items():
        replaced = rows["fields"].map(lambda fields, c=column: c in fields).to_numpy()
        target = np.flatnonzero(hit)[replaced]
        frame.loc[frame.index[target], columns.identifier(kind.value)] = None
    return frame


def _components(n: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(sources), dtype=np.int8), (sources, targets)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _identifier_groups(
    catalog: Catalog,
    snapshots: Mapping[str, SourceSnapshot],
    key: Key,
    known: Mapping[TableId, pd.DataFrame],
    token_subjects: Mapping[str, str],
) -> tuple[dict[TableId, pd.Series], dict[str, str], frozenset[str]]:
    """Subject keys of every row of the tables that carry identifiers, each token's subject key, and the weak
    tokens that would have joined different people.

    Rows and tokens form a graph. Strong identifiers (and the subjects the ledger recorded) join rows outright.
    A weak identifier (a phone by default: colleagues share an office phone) joins only where it does not
    bring together rows whose strong identifiers belong to different groups; where it would, the strong groups
    stay apart, a row known only by such weak identifiers is a subject of its own, and the weak tokens are
    reported as ambiguous, pointing at nobody. A token an earlier run saw is tied to the subject it had then,
    so a person keeps their key when the row that gave the group its smallest token is deleted.
    """
    weak_prefixes = tuple(f"{kind.value[0]}:" for kind in catalog.weak_identifiers())
    tables: list[tuple[TableId, pd.DataFrame, list[str]]] = []
    for source, table, entry in catalog.tables():
        if entry.subject.identifiers:
            frame = _with_known(snapshots[source][table].frame, entry, known.get((source, table)))
            cols = [columns.identifier(k.value) for k in entry.subject.identifiers] + [KNOWN_TOKEN]
            tables.append(((source, table), frame, cols))
    offsets = np.cumsum([0] + [len(f) for _, f, _ in tables])
    n_rows = int(offsets[-1])
    row_ids: list[np.ndarray] = []
    token_chunks: list[np.ndarray] = []
    for (_, frame, cols), offset in zip(tables, offsets, strict=False):
        for col in cols:
            present = frame[col].notna().to_numpy()
            row_ids.append(np.flatnonzero(present) + offset)
            token_chunks.append(frame[col].to_numpy()[present])
    row_arr = np.concatenate(row_ids) if row_ids else np.array([], dtype=np.int64)
    token_arr = np.concatenate(token_chunks) if token_chunks else np.array([], dtype=object)
    codes, uniques = pd.factorize(token_arr)
    uniq = np.asarray(uniques, dtype=object)
    linked = [(i, KNOWN + token_subjects[u]) for i, u in enumerate(uniq.tolist()) if u in token_subjects]
    all_codes, all_names = pd.factorize(np.concatenate([uniq, np.array([n for _, n in linked], dtype=object)]))
    names = pd.Series(np.asarray(all_names, dtype=object))
    n = n_rows + len(all_names)
    weak_token = np.zeros(n, dtype=bool)
    weak_token[n_rows:] = names.str.startswith(weak_prefixes).to_numpy() if weak_prefixes else False
    sources = np.concatenate([row_arr, n_rows + np.array([i for i, _ in linked], dtype=np.int64)])
    targets = np.concatenate([n_rows + codes, n_rows + all_codes[len(uniq) :]])
    weak_edge = weak_token[targets] | weak_token[sources]
    full = _components(n, sources, targets)
    strong = _components(n, sources[~weak_edge], targets[~weak_edge])
    # a node is strong if a strong edge touches it: its strong component is a person for certain
    strong_node = np.zeros(n, dtype=bool)
    strong_node[sources[~weak_edge]] = True
    strong_node[targets[~weak_edge]] = True
    people = pd.DataFrame({"full": full[strong_node], "strong": strong[strong_node]}).drop_duplicates()
    per_component = people.groupby("full")["strong"].nunique()
    ambiguous_component = np.zeros(int(full.max()) + 1 if n else 0, dtype=bool)
    ambiguous_component[per_component.index[per_component > 1].to_numpy()] = True
    ambiguous = ambiguous_component[full] if n else np.zeros(0, dtype=bool)
    labels = full.copy()
    if ambiguous.any():
        # strong nodes keep their strong group; a row known only by a shared weak identifier is its own
        labels[ambiguous & strong_node] = n + strong[ambiguous & strong_node]
        others = ambiguous & ~strong_node
        labels[others] = 2 * n + np.flatnonzero(others)
    ambiguous_tokens = frozenset(names[(ambiguous[n_rows:] & weak_token[n_rows:])].tolist())
    # anchor of a group: its smallest token (a known subject first); rows without tokens anchor on themselves
    token_labels = labels[n_rows:]
    anchored = ~(ambiguous[n_rows:] & weak_token[n_rows:])
    smallest = pd.DataFrame({"label": token_labels[anchored], "name": names[anchored].to_numpy()})
    smallest = smallest.sort_values(["label", "name"]).drop_duplicates("label")  # sorting beats a per-group min
    anchors = pd.Series(smallest["name"].to_numpy(), index=smallest["label"].to_numpy())
    row_labels = labels[:n_rows]
    result: dict[TableId, pd.Series] = {}
    subject_cache: dict[str, str] = {}
    for (table_id, frame, _), offset in zip(tables, offsets, strict=False):
        labels_here = row_labels[offset : offset + len(frame)]
        anchor = pd.Series(labels_here).map(anchors).astype(object)
        own = anchor.isna()
        if own.any():
            anchor[own] = [f"row:{table_id[0]}.{table_id[1]}:{pk}" for pk in frame["pk"].to_numpy()[own.to_numpy()]]
        for a in anchor.unique():
            if a not in subject_cache:
                subject_cache[a] = a[len(KNOWN) :] if a.startswith(KNOWN) else subject_key(key, a)
        keys = anchor.map(subject_cache).to_numpy()
        result[table_id] = pd.Series(keys, index=frame["pk"].to_numpy(), dtype=object, name="subject")
    component_anchor = pd.Series(token_labels[: len(uniq)]).map(anchors)
    for a in component_anchor.dropna().unique():
        if a not in subject_cache:
            subject_cache[a] = a[len(KNOWN) :] if a.startswith(KNOWN) else subject_key(key, a)
    tokens = {
        t: subject_cache[a]
        for t, a in zip(uniq.tolist(), component_anchor.tolist(), strict=True)
        if not t.startswith(KNOWN) and t not in ambiguous_tokens and isinstance(a, str)
    }
    return result, tokens, ambiguous_tokens


def build_subject_index(
    catalog: Catalog,
    snapshots: Mapping[str, SourceSnapshot],
    key: Key,
    known: Mapping[TableId, pd.DataFrame] | None = None,
    remembered: pd.Series | None = None,
    token_subjects: Mapping[str, str] | None = None,
) -> SubjectIndex:
    """`known[(source, table)]` (pk as text, subject, fields) lists rows the ledger changed; see `_with_known`.
    `remembered` holds each subject's latest interaction seen by earlier runs, which still counts."""
    rows, tokens, ambiguous = _identifier_groups(catalog, snapshots, key, known or {}, token_subjects or {})
    pending = [(s, t) for s, t, e in catalog.tables() if not e.subject.identifiers]
    while pending:
        progressed = False
        for table_id in list(pending):
            source, table = table_id
            parent = (source, catalog.table(source, table).subject.parent)
            if parent not in rows:
                continue
            frame = snapshots[source][table].frame
            subjects = pd.Series(rows[parent].reindex(frame["fk"].to_numpy()).to_numpy(), dtype=object)
            orphan = subjects.isna()
            if orphan.any():
                subjects[orphan] = [
                    subject_key(key, f"row:{source}.{table}:{pk}") for pk in frame.loc[orphan, "pk"].to_numpy()
                ]
            rows[table_id] = pd.Series(subjects.to_numpy(), index=frame["pk"].to_numpy(), dtype=object, name="subject")
            pending.remove(table_id)
            progressed = True
        if not progressed:
            raise ValueError(f"parent links cannot be resolved for {pending}; check the catalog's parent entries")

    moments = []
    for source, table, entry in catalog.tables():
        snap = snapshots[source][table]
        last = interaction_moments(snap, entry.interactions)
        moments.append(
            pd.DataFrame({"subject": rows[(source, table)].to_numpy(), "moment": last.array, "source": source})
        )
    everything = pd.concat(moments, ignore_index=True)
    subjects = everything.groupby("subject", sort=True).agg(
        last_interaction=("moment", "max"), sources=("source", "nunique")
    )
    subjects["last_interaction"] = subjects["last_interaction"].astype("datetime64[us, UTC]")
    if remembered is not None and len(remembered):
        earlier = remembered.reindex(subjects.index)
        subjects["last_interaction"] = subjects["last_interaction"].where(
            earlier.isna() | (subjects["last_interaction"] >= earlier), earlier
        )
    return SubjectIndex(rows, subjects.reset_index(), tokens, ambiguous, dict(known or {}))

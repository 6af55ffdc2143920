"""A batch of plan entries, and the checksums of held rows that must be taken before a table's first batch."""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from retention.storage.bulk import chunks

CHECKSUM_ROWS = 5000


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of one table's plan entries, numbered from 1 in the order the run applies them."""

    number: int
    table: str
    entries: pd.DataFrame
    batch_id: str


@dataclass(frozen=True, eq=False)
class RunBatches:
    """A run's batches in the order it applies them: each table's entries (`tables`, in apply order) in batches
    of `batch_rows` whole rows, numbered from 1, with name-based ids (UUIDs of the batch number in the run's
    random `namespace`). It pickles, so that a writer process yields the same batches, ids included."""

    tables: dict[str, pd.DataFrame]
    batch_rows: int
    namespace: uuid.UUID = field(default_factory=uuid.uuid4)

    def __call__(self) -> Iterator[Batch]:
        numbers = itertools.count(1)
        for table, entries in self.tables.items():
            for chunk in row_batches(entries, self.batch_rows):
                number = next(numbers)
                yield Batch(number, table, chunk, str(uuid.uuid5(self.namespace, str(number))))

    @property
    def entries(self) -> int:
        return sum(len(entries) for entries in self.tables.values())


def row_batches(entries: pd.DataFrame, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Batches of `batch_rows` whole rows (all entries of a row stay together), in one pass over the entries."""
    codes, _ = pd.factorize(entries["pk"])
    if len(codes) == 0 or codes[-1] == len(codes) - 1:  # one entry per row: batches are plain slices
        for start in range(0, len(entries), batch_rows):
            yield entries.iloc[start : start + batch_rows]
        return
    for _, batch in entries.groupby(codes // batch_rows, sort=True):
        yield batch


Checksum = Callable[[str, list], dict[str, int]]
"""(table, primary keys) -> {pk: keyed digest of the row}. A writer process takes checksums with its own copy,
so it must pickle (`retention.apply.digests.RowDigests`)."""


class HeldRows:
    """Checksums of the held rows of the tables a run writes, given in the order the run first writes them.
    A table's must all be taken before its first batch; taking them earlier is harmless. If the run's first
    table has held rows, the run's own process takes them (`take_first`) while a writer process starts and
    records the first batches; the ledger takes the others, in pieces of `CHECKSUM_ROWS` rows, so that a
    writer process can take them while it waits for the source (`take_piece`), yet answer soon. A table's
    checksums are handed over whole before its first batch (`before`): a writer process that sent them piece
    by piece would stall on a full pipe while the run is busy with a batch."""

    def __init__(self, keys: dict[str, list], checksum: Checksum, first_table: str | None) -> None:
        self.first = {table: pks for table, pks in keys.items() if table == first_table}
        rest = {table: pks for table, pks in keys.items() if table != first_table}
        self.pending = deque((table, chunk) for table, pks in rest.items() for chunk in chunks(pks, CHECKSUM_ROWS))
        self.taken: dict[str, dict[str, int]] = {}
        self.checksum = checksum

    def take_first(self) -> dict[str, dict[str, int]]:
        return {table: self.checksum(table, pks) for table, pks in self.first.items()}

    def take_piece(self) -> None:
        table, pks = self.pending.popleft()
        self.taken.setdefault(table, {}).update(self.checksum(table, pks))

    def before(self, batch: Batch) -> dict[str, dict[str, int]]:
        """The checksums of the batch's table, if it has held rows and they have not been handed over yet."""
        while any(table == batch.table for table, _ in self.pending):
            self.take_piece()
        return {batch.table: self.taken.pop(batch.table)} if batch.table in self.taken else {}

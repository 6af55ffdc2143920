"""What an apply step did, per table, and the material its verification compares."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Verification:
    """What the check after apply compares: keyed digests only, never values.

    The digests of replaced values are taken from the same read that fetches them for anonymising, so apply
    reads no column twice; the check afterwards reads the changed rows again by key.
    """

    held: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> pk -> row digest before apply
    deleted: dict[str, list[object]] = field(default_factory=dict)  # table -> pks deleted
    cleared: dict[str, dict[str, list[object]]] = field(default_factory=dict)  # table -> field -> pks
    originals: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # table -> field -> pk -> digest


@dataclass
class TableOutcome:
    deleted: int = 0
    updated: int = 0
    entries: int = 0


@dataclass
class ApplyResult:
    source: str
    tables: dict[str, TableOutcome] = field(default_factory=dict)
    batches: int = 0
    recovered_batches: int = 0
    left_to_next_day: int = 0
    """Planned entries left out because another run changed their row, or its person's hold began, meanwhile."""
    verification: Verification = field(default_factory=Verification)

    @property
    def entries(self) -> int:
        return sum(t.entries for t in self.tables.values())

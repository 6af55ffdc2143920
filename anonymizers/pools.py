"""Fixed pools of Danish fake values that surrogates index into.

Drawing from Faker per row would be slow and would depend on call order. Instead the pools are drawn once
per process from a seeded `da_DK` Faker and a keyed hash picks an entry, so a surrogate depends only on
the key, the seed value and the pinned Faker version.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from faker import Faker

POOL_SEED = 20_240_601
POOL_SIZE = 4096
"""A power of two, so that a 32-bit digest word modulo the size picks an entry without bias."""

_ASCII = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa", "ß": "ss"})


def ascii_fold(text: str) -> str:
    """Lowercase ASCII for e-mail and user names, spelt the Danish way (æ -> ae, ø -> oe, å -> aa)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII))
    plain = "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in ".-"))
    return plain.lower()


@dataclass(frozen=True)
class Pools:
    """Parallel arrays: display values and their ASCII spelling for addresses and logins."""

    first: np.ndarray
    first_ascii: np.ndarray
    last: np.ndarray
    last_ascii: np.ndarray
    street: np.ndarray
    place: np.ndarray


def _draw(size: int, make: Callable[[], str]) -> np.ndarray:
    return np.array([make() for _ in range(size)], dtype=object)


@cache
def pools() -> Pools:
    """The pools, drawn on first use and shared by the whole process."""
    fake = Faker("da_DK")
    fake.seed_instance(POOL_SEED)
    first = _draw(POOL_SIZE, fake.first_name)
    last = _draw(POOL_SIZE, fake.last_name)
    street = _draw(POOL_SIZE, fake.street_name)
    place = np.array([f"{fake.postcode()} {fake.city()}" for _ in range(POOL_SIZE)], dtype=object)
    fold = np.vectorize(ascii_fold, otypes=[object])
    return Pools(first, fold(first), last, fold(last), street, place)

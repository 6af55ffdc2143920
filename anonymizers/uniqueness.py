"""Collision-free assignment of generated values for UNIQUE columns.

Each unit (a seed, or a seed and its row's original value) has a fixed, keyed sequence of candidates.
Units claim their first candidate that nobody holds yet, in the order of a keyed hash of the unit, never
in row order. So the outcome depends only on the set of units and the values already taken, and
re-running a batch in another order, process or database gives the same answer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

MAX_ATTEMPTS = 64
_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ł": "l", "þ": "th"})


def collation_key(value: str) -> str:
    """A comparison key that errs on the coarse side of case- and accent-insensitive collations.

    MariaDB's `*_ci` collations ignore case, accents and trailing spaces, so "Åse " and "ase" clash in a
    UNIQUE index there. Treating more values as equal here costs an extra suffix now and then; treating
    fewer as equal would cost a failed write.
    """
    if value.isascii():
        return value.lower().rstrip()
    if max(value) < _LATIN_END:
        return value.translate(_LATIN).rstrip()
    return _fold(value).rstrip()


def _fold(value: str) -> str:
    """Case folded, decomposed, and stripped of combining marks."""
    folded = unicodedata.normalize("NFKD", value.casefold().translate(_LETTERS))
    return "".join(ch for ch in folded if not unicodedata.combining(ch))


_LATIN_END = "\u0250"
_LATIN = {c: _fold(chr(c)) for c in range(ord(_LATIN_END))}
"""Every step of `_fold` works character by character, so for Latin text (Danish included) a table of each
character's fold gives the same key at a fraction of the cost."""


def collation_keys(values: Sequence[str]) -> list[str]:
    """`collation_key` of many values, with the plain-ASCII case inline (most values, at a fraction of the
    cost of a call each)."""
    return [v.lower().rstrip() if v.isascii() else collation_key(v) for v in values]


def assign_unique(
    order_keys: Callable[[], Sequence[bytes]],
    first: Sequence[str],
    candidate: Callable[[int, int], str],
    taken: frozenset[str] | set[str],
    what: str,
    own: Sequence[set[str]] | None = None,
) -> list[str]:
    """Choose one value per unit so that no two units, and no unit and `taken`, share a value.

    `first[i]` is unit i's preferred value, `candidate(i, attempt)` its attempt-th alternative (attempt >= 1),
    `order_keys()[i]` the keyed bytes that decide who keeps a contested value (asked for only when values
    clash), `own[i]` the collation keys of the values unit i replaces, which it must not get back. Raises
    ValueError when the column leaves no room (e.g. thousands of people in a 2-character column).
    """
    used = set(collation_keys(list(taken)))
    keys = collation_keys(first)
    clean = own is None or all(k not in o for k, o in zip(keys, own, strict=True))
    if clean and len(set(keys)) == len(keys) and used.isdisjoint(keys):
        return list(first)
    chosen: list[str] = [""] * len(first)
    for i in sorted(range(len(first)), key=order_keys().__getitem__):
        forbidden = own[i] if own is not None else set()
        value, folded = _next_free(i, first[i], keys[i], candidate, _taken_by(used, forbidden), what)
        used.add(folded)
        chosen[i] = value
    return chosen


def avoid_own(first: Sequence[str], candidate: Callable[[int, int], str], own: Sequence[set[str]]) -> list[str]:
    """Give each unit whose generated value equals one it replaces its next candidate that does not: a
    surrogate drawn from the same pools as real names can otherwise hit the person's own name."""
    chosen = list(first)
    for i, (value, folded) in enumerate(zip(first, collation_keys(first), strict=True)):
        if folded in own[i]:
            chosen[i] = _next_free(i, value, folded, candidate, own[i].__contains__, "surrogate")[0]
    return chosen


def _next_free(
    i: int, value: str, folded: str, candidate: Callable[[int, int], str], blocked: Callable[[str], bool], what: str
) -> tuple[str, str]:
    attempt = 0
    while blocked(folded):
        attempt += 1
        if attempt > MAX_ATTEMPTS:
            raise ValueError(
                f"cannot find a unique {what} after {MAX_ATTEMPTS} attempts: the column's length leaves "
                "too few distinct values; widen the column or choose another anonymiser"
            )
        value = candidate(i, attempt)
        folded = collation_key(value)
    return value, folded


DIGITS = "0123456789"
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def suffix_width(attempt: int) -> int:
    """Characters of disambiguating suffix for an attempt: 2 at first, one more every 8 attempts."""
    return 2 + (attempt - 1) // 8


def keyed_suffix(number: int, attempt: int, alphabet: str = DIGITS) -> str:
    """The keyed suffix for an attempt: `number` (from an HMAC) written in `alphabet`, fixed width."""
    chars = []
    for _ in range(suffix_width(attempt)):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def _taken_by(used: set[str], forbidden: set[str]) -> Callable[[str], bool]:
    """Whether a folded candidate is taken: by a value already chosen, or by one this unit may not get back."""
    return lambda key: key in used or key in forbidden

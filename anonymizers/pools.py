"""Fixed pools of fake values per locale that surrogates index into.

Drawing from Faker per row would be slow and would depend on call order. Instead a keyed hash picks an entry
of fixed pools, drawn once per locale from a seeded Faker of that locale and shipped as `pools_<locale>.json`
beside this module (`pools_da_DK.json`, `pools_en_GB.json`, `pools_de_DE.json`). So a surrogate depends only on
the key, the seed value and the locale: upgrading Faker changes no surrogate, and no run pays for drawing the
pools (a third of a second each). `python -m anonymizers.draw_pools` draws them again; the tests check that
the shipped files are what the pinned Faker draws.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from anonymizers.locales import DEFAULT_LOCALE, LOCALES, get_locale

POOL_SEED = 20_240_601
POOL_SIZE = 4096
"""A power of two, so that a 32-bit digest word modulo the size picks an entry without bias."""
PARTS = ("first", "last", "street", "place")

_ASCII = {name: str.maketrans(dict(locale.letters)) for name, locale in LOCALES.items()}


def pool_file(locale: str) -> Path:
    """The shipped pools of one locale."""
    return Path(__file__).with_name(f"pools_{get_locale(locale).name}.json")


def ascii_fold(text: str, locale: str = DEFAULT_LOCALE) -> str:
    """Lowercase ASCII for e-mail and user names, spelt the locale's way (Danish æ -> ae, German ü -> ue)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII[get_locale(locale).name]))
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


def load(path: Path) -> dict[str, list[str]]:
    """The shipped pools, checked for shape, so a damaged file fails here instead of skewing surrogates."""
    redraw = "run `python -m anonymizers.draw_pools` to write it again"
    try:
        drawn = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path}: cannot read the surrogate pools ({exc}); {redraw}") from None
    for part in PARTS:
        values = drawn.get(part) if isinstance(drawn, dict) else None
        if (
            not isinstance(values, list)
            or len(values) != POOL_SIZE
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise RuntimeError(f"{path}: '{part}' must be a list of {POOL_SIZE} non-empty strings; {redraw}")
    return drawn


@cache
def pools(locale: str) -> Pools:
    """The pools of one locale, read on first use and shared by the whole process."""
    drawn = {part: np.array(values, dtype=object) for part, values in load(pool_file(locale)).items() if part in PARTS}
    fold = np.vectorize(lambda text: ascii_fold(text, locale), otypes=[object])
    first, last = drawn["first"], drawn["last"]
    return Pools(first, fold(first), last, fold(last), drawn["street"], drawn["place"])

"""The locales the anonymisers know, listed once: which pools, phone numbers, spellings and postcodes they mean.

A locale picks the surrogate pools (`pools_<locale>.json`), how a surrogate address and phone number are
written, how names are spelt in ASCII for e-mails and logins, and the country whose postcodes `postal_region`
reads. The engine names one in `Context.locale`; `da_DK` is the default because every surrogate made before
locales existed is Danish, and must stay what it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

DEFAULT_LOCALE = "da_DK"


@dataclass(frozen=True)
class PhonePlan:
    """Surrogate numbers of one country: a block of numbers that look real to validation and to people, while
    the key alone decides which one a person gets."""

    calling_code: str
    trunk_prefix: str
    """Dialled before the national number inside the country ('0' in GB and DE, nothing in DK)."""
    first: int
    """The lowest national significant number of the block."""
    count: int
    groups: tuple[int, ...]
    """Digits per group as the country writes them ('20 12 34 56', '7123 456789', '171 2345678')."""

    @property
    def digits(self) -> int:
        return sum(self.groups)


@dataclass(frozen=True)
class Locale:
    """What differs between countries in surrogates and generalisation."""

    name: str
    country: str
    """ISO 3166 code: the region of the phone surrogates and the country of the postcodes."""
    phone: PhonePlan
    place: str
    """How the place of an address reads, from a Faker postcode and city."""
    number_first: bool
    """House number before the street ('12 Baker Street') instead of after it ('Vestergade 12')."""
    middle_surnames: bool
    """Whether a second surname may stand before the last one without a hyphen ('Mette Lund Hansen')."""
    letters: Mapping[str, str]
    """ASCII spellings of letters that dropping accents would spell wrongly (æ -> ae, ü -> ue); the British
    pools are plain ASCII already."""


LOCALES: Mapping[str, Locale] = MappingProxyType(
    {
        locale.name: locale
        for locale in (
            Locale(
                name="da_DK",
                country="DK",
                phone=PhonePlan("45", "", 20_000_000, 80_000_000, (2, 2, 2, 2)),
                place="{postcode} {city}",
                number_first=False,
                middle_surnames=True,
                letters={"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa", "ß": "ss"},
            ),
            Locale(
                name="en_GB",
                country="GB",
                phone=PhonePlan("44", "0", 7_100_000_000, 300_000_000, (4, 6)),
                place="{city} {postcode}",
                number_first=True,
                middle_surnames=False,
                letters={},
            ),
            Locale(
                name="de_DE",
                country="DE",
                phone=PhonePlan("49", "0", 1_700_000_000, 100_000_000, (3, 7)),
                place="{postcode} {city}",
                number_first=False,
                middle_surnames=False,
                letters={"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"},
            ),
        )
    }
)
"""Phone blocks: British mobiles 071-073 and German 017x, valid in every format (the tests check them with
`phonenumbers`); the Danish block is the one surrogates always used (eight digits, first 2-9), kept so that no
Danish surrogate changes."""

COUNTRIES = frozenset(locale.country for locale in LOCALES.values())


def get_locale(name: str) -> Locale:
    """The locale called `name`; a ValueError names the supported ones, so a typo stops at load time."""
    try:
        return LOCALES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown locale {name!r}; supported locales: {', '.join(sorted(LOCALES))}") from None

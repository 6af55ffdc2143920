"""The catalog's names for anonymisers, so that YAML can say `anonymizer: surrogate_email`."""

from __future__ import annotations

from anonymizers.base import Anonymizer
from anonymizers.clear import CLEAR
from anonymizers.generalize import BIRTH_DECADE, IP_PREFIX, MONTH, POSTAL_REGION, YEAR
from anonymizers.scrub import SCRUB_TEXT
from anonymizers.surrogates import SURROGATES
from anonymizers.tokens import TOKEN


class UnknownAnonymizerError(KeyError):
    """An anonymiser name the registry does not know; the message lists the names it does know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


REGISTRY: dict[str, Anonymizer] = {
    a.name: a
    for a in (
        TOKEN,
        *SURROGATES.values(),
        MONTH,
        YEAR,
        BIRTH_DECADE,
        IP_PREFIX,
        POSTAL_REGION,
        SCRUB_TEXT,
        CLEAR,
    )
}


def get(name: str) -> Anonymizer:
    """The anonymiser called `name`; UnknownAnonymizerError (a KeyError) names the known ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownAnonymizerError(
            f"unknown anonymizer {name!r}; known anonymizers: {', '.join(sorted(REGISTRY))}"
        ) from None

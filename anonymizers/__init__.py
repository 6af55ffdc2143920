"""Pure value transforms for pseudonymisation and anonymisation, vectorised over pandas Series.

The bottom layer of the engine: no Dagster, no SQL, no engine imports. The engine picks an anonymiser by
name (`get("surrogate_email")`), checks it against the column at load time (`check`) and calls it with the
values and a `Context` holding the key, the column spec, per-row seeds and the locale (`LOCALES`; Danish
unless the engine names another), which decides the surrogates' pools and formats and the postcodes read.
"""

from anonymizers.base import Anonymizer, ColumnSpec, Context
from anonymizers.keys import Key, hmac_digest, hmac_hex
from anonymizers.locales import LOCALES, get_locale
from anonymizers.registry import REGISTRY, UnknownAnonymizerError, get

__all__ = [
    "LOCALES",
    "REGISTRY",
    "Anonymizer",
    "ColumnSpec",
    "Context",
    "Key",
    "UnknownAnonymizerError",
    "get",
    "get_locale",
    "hmac_digest",
    "hmac_hex",
]

"""Pure value transforms for pseudonymisation and anonymisation, vectorised over pandas Series.

The bottom layer of the engine: no Dagster, no SQL, no engine imports. The engine picks an anonymiser by
name (`get("surrogate_email")`), checks it against the column at load time (`check`) and calls it with the
values and a `Context` holding the key, the column spec and per-row seeds.
"""

from anonymizers.base import Anonymizer, ColumnSpec, Context
from anonymizers.keys import Key, hmac_digest, hmac_hex
from anonymizers.registry import REGISTRY, UnknownAnonymizerError, get

__all__ = [
    "REGISTRY",
    "Anonymizer",
    "ColumnSpec",
    "Context",
    "Key",
    "UnknownAnonymizerError",
    "get",
    "hmac_digest",
    "hmac_hex",
]

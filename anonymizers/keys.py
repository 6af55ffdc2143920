"""Pseudonymisation keys and the keyed hash every other anonymiser is built on.

A plain hash of an e-mail is not pseudonymisation (EDPB 01/2025): anyone can hash a guessed address and
compare. Every transform here is therefore an HMAC-SHA-256 under a secret that lives outside the data.
The key has an id so that keys can rotate and a stored token says which key made it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MIN_SECRET_BYTES = 16
"""128 bits: below this a key could be brute-forced, so we refuse it rather than pseudonymise weakly."""

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SEP = b"\x00"
_BLOCK = 64  # SHA-256's block size in bytes


@dataclass(frozen=True)
class Key:
    """A named HMAC secret. The secret never shows in repr/str, so logging a key or a context is safe."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise ValueError(
                "key_id must be 1-32 characters of letters, digits, '_' or '-' (it is embedded in tokens "
                f"separated by dots), got {self.key_id!r}"
            )
        if not isinstance(self.secret, bytes | bytearray):
            raise TypeError("Key.secret must be bytes")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"key {self.key_id!r}: the secret has {len(self.secret)} bytes; at least {MIN_SECRET_BYTES} "
                "are needed (generate one with Key.generate or `python -c 'import secrets; "
                "print(secrets.token_hex(32))'`)"
            )
        object.__setattr__(self, "secret", bytes(self.secret))

    def __reduce__(self) -> tuple[Any, ...]:
        """Refuse pickling: a pickled key would land in Dagster's run storage or an IO manager's files."""
        raise TypeError(f"key {self.key_id!r} cannot be pickled; pass the key id and load the secret where it is used")

    def __copy__(self) -> Key:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Key:
        return self

    @classmethod
    def generate(cls, key_id: str) -> Key:
        """A fresh random 256-bit key, e.g. for a demo that must say it made its own key."""
        return cls(key_id, secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, key_id: str, secret_hex: str) -> Key:
        """A key from the hex text a key file or environment variable holds."""
        try:
            secret = bytes.fromhex(secret_hex.strip())
        except ValueError:
            raise ValueError(f"key {key_id!r}: the secret is not valid hex") from None
        return cls(key_id, secret)


def _prefix(key: Key, domain: str) -> bytes:
    """The message prefix: key id and domain, NUL-separated so no two (id, domain, value) triples collide."""
    if "\x00" in domain:
        raise ValueError("a hash domain must not contain NUL")
    return key.key_id.encode() + _SEP + domain.encode() + _SEP


def hmac_digest(key: Key, domain: str, value: str) -> bytes:
    """HMAC-SHA-256 of `value` for one purpose (`domain`); other domains or key ids give unrelated digests."""
    return hmac.digest(key.secret, _prefix(key, domain) + value.encode("utf-8", "surrogatepass"), "sha256")


def hmac_hex(key: Key, domain: str, value: str) -> str:
    """`hmac_digest` as 64 lowercase hex characters."""
    return hmac_digest(key, domain, value).hex()


def hmac_digests(key: Key, domain: str, values: Iterable[str]) -> list[bytes]:
    """`hmac_digest` for many values. HMAC (RFC 2104) spelt out over SHA-256 states that are keyed once and
    copied per value: the same digests at about half the cost of copying an `hmac` object per value."""
    secret = key.secret if len(key.secret) <= _BLOCK else hashlib.sha256(key.secret).digest()
    padded = secret.ljust(_BLOCK, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    inner.update(_prefix(key, domain))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    out: list[bytes] = []
    append = out.append
    for value in values:
        h = inner.copy()
        h.update(value.encode("utf-8", "surrogatepass"))
        o = outer.copy()
        o.update(h.digest())
        append(o.digest())
    return out

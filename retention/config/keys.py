"""Secret keys for subject keys and pseudonyms: loaded from the environment or a key file, never logged.

Subject keys (which link a person's rows across the estate and the ledger) always use the keyring's first
key, so that rotating keys changes new pseudonyms but not who is who; pseudonym tokens use the active key.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from anonymizers.keys import Key
from retention.config.settings import default_key_file

KEY_ENV = "RETENTION_KEY"


KEY_FILE_ENV = "RETENTION_KEY_FILE"


KEY_FIX = (
    f"set {KEY_FILE_ENV} to a key file (create one with `retention keys init --file PATH`) "
    f"or {KEY_ENV} to 'KEYID:BASE64SECRET' (at least 32 random bytes)"
)


class KeyError_(Exception):
    """No usable key; the message says how to provide one and never contains key material."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, Key] = field(repr=False)
    active_id: str
    subject_id: str
    origin: str

    @property
    def active(self) -> Key:
        return self.keys[self.active_id]

    @property
    def subject(self) -> Key:
        return self.keys[self.subject_id]

    def __repr__(self) -> str:
        return f"Keyring(ids={sorted(self.keys)}, active={self.active_id!r}, origin={self.origin!r})"


def _decode(secret: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(secret, validate=True)
    except ValueError:
        raise KeyError_(f"{where}: the secret is not valid base64; {KEY_FIX}") from None
    if len(raw) < 32:
        raise KeyError_(f"{where}: the secret has {len(raw)} bytes, fewer than 32; {KEY_FIX}")
    return raw


def _new_entry(key_id: str) -> dict[str, str]:
    return {
        "id": key_id,
        "secret": base64.b64encode(secrets.token_bytes(32)).decode(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


def create_key_file(path: Path) -> None:
    if path.is_dir():
        raise KeyError_(f"{path}: is a folder; give the path of the key file to create, e.g. {path / 'keys.json'}")
    if path.exists():
        raise KeyError_(f"{path}: a key file already exists; use `retention keys rotate` to add a key")
    _write_private(path, {"keys": [_new_entry("k1")], "active": "k1"})


def rotate_key_file(path: Path) -> str:
    """Add a new key and make it active for new pseudonyms; old keys stay to read old tokens' ids."""
    load_key_file(path)  # refuses what is not a private key file before anything is written
    data = json.loads(path.read_text())
    ids = [entry["id"] for entry in data["keys"]]
    number = max(int(i[1:]) for i in ids if i[1:].isdigit()) + 1 if ids else 1
    new_id = f"k{number}"
    data["keys"].append(_new_entry(new_id))
    data["active"] = new_id
    _write_private(path, data)
    return new_id


def load_key_file(path: Path) -> Keyring:
    if not path.exists():
        raise KeyError_(f"{path}: key file not found; {KEY_FIX}")
    mode = path.stat().st_mode & 0o077
    if mode:
        raise KeyError_(
            f"{path}: the key file is readable by others (mode {oct(path.stat().st_mode & 0o777)}); "
            f"run `chmod 600 {path}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["keys"]
        keys = {e["id"]: Key(e["id"], _decode(e["secret"], f"{path}: key {e['id']!r}")) for e in entries}
        active = data["active"]
    except (ValueError, KeyError, TypeError, OSError):
        raise KeyError_(f"{path}: not a key file (expected JSON with 'keys' and 'active'); {KEY_FIX}") from None
    if active not in keys:
        raise KeyError_(f"{path}: the active key {active!r} is not among the keys {sorted(keys)}")
    return Keyring(keys, active, entries[0]["id"], origin=str(path))


def load_keyring(*, demo: bool) -> tuple[Keyring, str | None]:
    """The keyring and, when a demo key was generated just now, a notice saying so.

    Outside the demo there is no fallback: the engine refuses to start without a key.
    """
    if value := os.environ.get(KEY_ENV):
        key_id, sep, secret = value.partition(":")
        if not sep or not key_id:
            raise KeyError_(f"{KEY_ENV} is set but not in the form 'KEYID:BASE64SECRET'; {KEY_FIX}")
        key = Key(key_id, _decode(secret, KEY_ENV))
        return Keyring({key_id: key}, key_id, key_id, origin=KEY_ENV), None
    if key_file := os.environ.get(KEY_FILE_ENV):
        return load_key_file(Path(key_file)), None
    if not demo:
        raise KeyError_(f"no key configured and the estate is not the demo, so the engine will not start; {KEY_FIX}")
    path = default_key_file()
    notice = None
    if not path.exists():
        create_key_file(path)
        notice = (
            f"generated a local demo key at {path} (owner-only permissions). It is for the demo estate only; "
            f"for real data keep a key outside the data and set {KEY_FILE_ENV} or {KEY_ENV}."
        )
    return load_key_file(path), notice

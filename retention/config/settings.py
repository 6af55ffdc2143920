"""Where the engine keeps its runtime state and finds its configuration; all overridable by environment."""

from __future__ import annotations

import os
from pathlib import Path


def var_dir() -> Path:
    """Runtime state (estate databases of the demo, control database, Dagster home, reports, keys)."""
    return Path(os.environ.get("RETENTION_VAR", "var"))


def private_dir(path: Path) -> Path:
    """Create `path`; inside var/ it and var/ itself are readable by their owner only, since var/ holds the key,
    the control database (the identifiers of pending requests), access exports and logs. A folder outside
    var/ (a source database the catalog names) is only created, its permissions left to its owner."""
    var = var_dir()
    path.mkdir(parents=True, exist_ok=True)
    inside = path.resolve().is_relative_to(var.resolve())
    for folder in {var, path} if inside else set():
        os.chmod(folder, 0o700)
    return path


def config_dir() -> Path:
    return Path(os.environ.get("RETENTION_CONFIG", "config"))


def catalog_path() -> Path:
    return Path(os.environ.get("RETENTION_CATALOG", config_dir() / "catalog.yaml"))


def policy_path() -> Path:
    return Path(os.environ.get("RETENTION_POLICY", config_dir() / "policy.yaml"))


def reports_dir() -> Path:
    return var_dir() / "reports"


def default_key_file() -> Path:
    return var_dir() / "keys" / "retention-keys.json"

"""Where the engine keeps its runtime state and finds its configuration; all overridable by environment."""

from __future__ import annotations

import os
from pathlib import Path


def var_dir() -> Path:
    """Runtime state (estate databases of the demo, control database, Dagster home, reports, keys)."""
    return Path(os.environ.get("RETENTION_VAR", "var"))


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

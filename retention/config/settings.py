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


EXECUTOR_ENV = "RETENTION_EXECUTOR"
EXECUTORS = ("in_process", "multiprocess")


def executor_name() -> str:
    """How a run's steps are executed (RETENTION_EXECUTOR): `in_process`, the default, one process and the
    steps in order; `multiprocess`, one process per step, so that the sources' steps run side by side."""
    text = os.environ.get(EXECUTOR_ENV, "").strip() or EXECUTORS[0]
    if text not in EXECUTORS:
        raise ValueError(
            f"{EXECUTOR_ENV}={text[:20]!r}: give in_process (one process, the default) or multiprocess (one "
            "process per step)"
        )
    return text


BATCH_ROWS_ENV = "RETENTION_BATCH_ROWS"


def whole_number(variable: str, default: int, low: int, high: int, unit: str) -> int:
    """A whole number from the environment within [low, high], or `default` when unset; ValueError naming the
    variable and what it takes otherwise (what `preflight` reports)."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{variable}={text[:20]!r}: give a whole number of {unit} from {low} to {high}")
    return int(text)


def batch_rows(default: int) -> int:
    """Rows per apply batch (RETENTION_BATCH_ROWS), one transaction each."""
    return whole_number(BATCH_ROWS_ENV, default, 1, 1_000_000, "rows")


def intermediate_dir() -> Path:
    """Where the daily job keeps its steps' outputs (snapshots, subject index, tagged records, plan): one file
    per asset and as-of day, keyed tokens and counts only, handed from step to step."""
    return var_dir() / "intermediate"


OUTPUT_KEEP_DAYS_ENV = "RETENTION_OUTPUT_KEEP_DAYS"


def output_keep_days() -> int:
    """Days a step's stored output is kept after it was written (RETENTION_OUTPUT_KEEP_DAYS, default 3): long
    enough to re-execute a failed run from the UI and report on recent days, short enough to stay bounded."""
    return whole_number(OUTPUT_KEEP_DAYS_ENV, 3, 1, 3650, "days")


RUN_KEEP_DAYS_ENV = "RETENTION_RUN_KEEP_DAYS"


def run_keep_days() -> int:
    """Days Dagster keeps a finished run, its event log and step logs (RETENTION_RUN_KEEP_DAYS, default 90; 0
    keeps them for ever). The ledger and the day's compliance reports are the record; these are for operators."""
    return whole_number(RUN_KEEP_DAYS_ENV, 90, 0, 36500, "days")

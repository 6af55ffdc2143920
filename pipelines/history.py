"""How long Dagster keeps finished runs: their records, event logs and captured step output are removed after
`RETENTION_RUN_KEEP_DAYS` days, so the instance does not grow for ever (the ledger and the day's compliance
reports are the lasting record; a run's events are for operators)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
PAGE = 100


@dataclass(frozen=True)
class Pruned:
    runs: int
    oldest_kept: dt.datetime


def prune_runs(instance: dg.DagsterInstance, keep_days: int, *, now: dt.datetime, keep: str | None = None) -> Pruned:
    """Delete every finished run created more than `keep_days` before `now` (none when `keep_days` is 0), with
    its event log and captured logs; `keep`, the run doing this, is never touched."""
    cutoff = now - dt.timedelta(days=keep_days)
    if keep_days == 0:
        return Pruned(0, cutoff)
    removed = 0
    while True:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED, created_before=cutoff), limit=PAGE, ascending=True
        )
        doomed = [r.dagster_run.run_id for r in records if r.dagster_run.run_id != keep]
        for run_id in doomed:
            instance.delete_run(run_id)
            instance.compute_log_manager.delete_logs(prefix=[run_id])
        removed += len(doomed)
        if len(records) < PAGE or not doomed:
            return Pruned(removed, cutoff)


def remove_legacy_outputs(storage: Path, asset_keys: Iterable[dg.AssetKey]) -> int:
    """Remove the step outputs earlier versions left in the Dagster home's storage folder (Dagster's default IO
    manager pickled every asset there, one file per day, never removed; they now live under var/intermediate).
    Only the assets' own folders go: the runs' captured logs (`storage/RUN_ID/compute_logs`) stay. Returns the
    bytes freed."""
    freed = 0
    for key in asset_keys:
        folder = storage.joinpath(*key.path)
        if folder.is_dir():
            freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return freed

"""The jobs' IO manager: each step's output in one file per asset and as-of day, outside the Dagster home, kept
`RETENTION_OUTPUT_KEEP_DAYS` days, and handed over in memory to the later steps of the same process.

Dagster's default IO manager pickles every output into the Dagster home and never removes one: at a million
rows that is some 160 MB a day, 60 GB a year, of snapshots and plans nobody reads after the day. Here a day's
outputs replace themselves when the day runs again, and files older than the keeping time are removed each
time an output is written. The outputs hold keyed tokens, keys and counts, never a personal value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pickle
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from retention.config import settings

SUFFIX = ".pickle"
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _part(text: str) -> str:
    """One path segment from an asset key part, a partition key or a step key: nothing that climbs or hides."""
    safe = UNSAFE.sub("_", text).lstrip(".")
    return safe or "_"


class IntermediateIOManager(dg.ConfigurableIOManager):
    """Pickled outputs under `base_dir`: `ASSET/PATH/PARTITION.pickle` for assets, `runs/RUN/STEP/OUTPUT` for
    ops (a subject request's receipt summary)."""

    base_dir: str | None = None
    """Default: `intermediate` under RETENTION_VAR, read at each use."""
    keep_days: int | None = None
    """Default: RETENTION_OUTPUT_KEEP_DAYS, read at each use."""

    _handed: dict[Path, Any] = PrivateAttr(default_factory=dict)
    """What this process stored in this run, by path: later steps of an in-process run take it from here, with
    no file read and no second copy in memory. Steps in other processes read the file."""

    @property
    def base(self) -> Path:
        return Path(self.base_dir) if self.base_dir else settings.intermediate_dir()

    @property
    def days(self) -> int:
        return settings.output_keep_days() if self.keep_days is None else self.keep_days

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        if context.has_asset_key:
            parts = [_part(p) for p in context.asset_key.path]
            partition = context.asset_partition_key if context.has_asset_partitions else "all"
            return Path(self.base, *parts, _part(partition) + SUFFIX)
        output = context if isinstance(context, dg.OutputContext) else context.upstream_output
        assert output is not None and output.run_id is not None and output.step_key is not None
        return Path(self.base, "runs", _part(output.run_id), _part(output.step_key), _part(output.name) + SUFFIX)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        path = self._path(context)
        settings.private_dir(path.parent)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".part", delete=False) as handle:
            try:
                pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                os.unlink(handle.name)
                raise
        os.replace(handle.name, path)
        self._handed[path] = obj
        size = path.stat().st_size
        removed = self.prune(keep=path)
        context.add_output_metadata(
            {
                "stored_bytes": dg.MetadataValue.int(size),
                "stored_until": dg.MetadataValue.text(self._kept_until().isoformat(timespec="minutes")),
                "expired_outputs_removed": dg.MetadataValue.int(removed),
            }
        )

    def load_input(self, context: dg.InputContext) -> Any:
        if context.has_asset_partitions and len(context.asset_partition_keys) != 1:
            raise dg.Failure(f"{context.asset_key.to_user_string()}: a step reads one as-of day's output at a time")
        path = self._path(context)
        if path in self._handed:
            return self._handed[path]
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            what = context.asset_key.to_user_string() if context.has_asset_key else "an earlier step"
            day = f" for {context.asset_partition_key}" if context.has_asset_partitions else ""
            raise FileNotFoundError(
                f"the output of {what}{day} is not stored: outputs are kept {self.days} days "
                f"({settings.OUTPUT_KEEP_DAYS_ENV}); run the day again to make it afresh"
            ) from None

    def _kept_until(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(days=self.days)

    def prune(self, keep: Path | None = None) -> int:
        """Remove outputs written more than `keep_days` ago, and unfinished writes of a process that died; the
        number of files removed."""
        oldest = time.time() - self.days * 86_400
        removed = 0
        for path in sorted(self.base.rglob("*"), reverse=True):
            try:
                if path == keep or path.stat().st_mtime >= oldest:
                    continue
                if path.is_dir():
                    with contextlib.suppress(OSError):  # not empty: another process writes there
                        path.rmdir()
                else:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another process pruned it first
                continue
        return removed

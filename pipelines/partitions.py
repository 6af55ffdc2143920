"""The as-of day: every daily asset is partitioned by it, so a backfill replays past days."""

import os

import dagster as dg

PARTITION_TAG = "dagster/partition"
"""The run tag that names a run's partition (its as-of day)."""


def daily_partitions(timezone: str) -> dg.DailyPartitionsDefinition:
    """Partition D means "as of the end of day D"; today's partition exists so `make demo` can run it."""
    return dg.DailyPartitionsDefinition(
        start_date=os.environ.get("RETENTION_FIRST_DAY", "2024-01-01"),
        timezone=timezone,
        end_offset=1,
    )

"""The as-of day: every daily asset is partitioned by it, so a backfill replays past days."""

import dagster as dg

from retention.config.policy import Policy

PARTITION_TAG = "dagster/partition"
"""The run tag that names a run's partition (its as-of day)."""

MISSING_PARTITIONS = (
    "A partition shows as missing for each day the job has not run for. Each run covers everything due up to the "
    "end of its day, so missing past days are not missed work: backfill them only to reconstruct history."
)
"""What the UI's count of missing partitions means, said where the job and its schedule are described."""


def daily_partitions(policy: Policy) -> dg.DailyPartitionsDefinition:
    """Partition D means "as of the end of day D", in the policy's business time zone, from the policy's
    `first_partition_day`; today's partition exists so `make demo` can run it. See MISSING_PARTITIONS."""
    return dg.DailyPartitionsDefinition(
        start_date=policy.first_partition_day.isoformat(),
        timezone=policy.business_timezone,
        end_offset=1,
    )

"""The Dagster instance that the CLI, `make ui` and the daemon share: DAGSTER_HOME (default var/dagster).

Its `dagster.yaml` decides where Dagster stores runs and events. The package ships two (`pipelines/instances/`):
the local default, SQLite under DAGSTER_HOME, written there when DAGSTER_HOME has none; and the production one,
PostgreSQL through dagster-postgres, which whoever deploys copies there. A file found in DAGSTER_HOME is used as
it is, unless it is a default an earlier version wrote.
"""

import fcntl
import os
from importlib import resources
from pathlib import Path

import dagster as dg

from retention.config.settings import private_dir, var_dir

LOCAL_YAML = "dagster.yaml"
"""The local default's file name, in the package and in DAGSTER_HOME."""
PRODUCTION_YAML = "dagster.production.yaml"
"""The production instance's file name in the package: copied to DAGSTER_HOME as dagster.yaml."""

OLD_DAGSTER_YAMLS = frozenset(
    {
        """# Local Dagster instance of the retention engine (SQLite storage under this folder).
telemetry:
  enabled: false
""",
        """# Local Dagster instance of the retention engine (SQLite storage under this folder).
telemetry:
  enabled: false
# Runs the daemon launches (schedule, sensors, UI) wait in the queue: one daily run at a time.
run_queue:
  max_concurrent_runs: 4
  tag_concurrency_limits:
    - key: retention/job
      value: daily
      limit: 1
# A run that never starts is marked failed; a run whose process was killed is marked failed by the run that
# takes over its leases (the request sensor, the next daily run), since this launcher cannot watch processes.
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  poll_interval_seconds: 60
""",
    }
)
"""What earlier versions wrote: replaced by the local default; a file anyone edited is left alone."""


def shipped_yaml(name: str) -> str:
    """The text of a dagster.yaml the package ships (`LOCAL_YAML`, `PRODUCTION_YAML`), installed or not."""
    return resources.files("pipelines").joinpath("instances", name).read_text(encoding="utf-8")


DAGSTER_YAML = shipped_yaml(LOCAL_YAML)
"""The local default instance's configuration."""


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to var/dagster, the one `make ui` opens too."""
    return Path(os.environ.get("DAGSTER_HOME") or var_dir() / "dagster").resolve()


def local_instance() -> dg.DagsterInstance:
    """The instance under DAGSTER_HOME, with the local default written there if it has no dagster.yaml. Its
    storages are created under a lock: Dagster's SQLite storages race when two processes create them at once."""
    home = dagster_home()
    private_dir(home)
    config_file = home / LOCAL_YAML
    if not config_file.exists() or config_file.read_text() in OLD_DAGSTER_YAMLS:
        config_file.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)
        instance.schedule_storage  # noqa: B018 -- created on first use
        return instance

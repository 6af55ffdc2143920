"""What the benchmarks share: where their estates live (SQLite files, or databases on the servers), and how
much memory a step takes."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from anonymizers.keys import Key
from retention.config.keys import Keyring
from retention.config.loading import EstateConfig, load_config
from retention.storage.engines import Estate
from retention.storage.schema import ensure_schema

ROOT = Path(__file__).resolve().parent.parent

SOURCES = ("enrolment", "newsletter", "elearning")
ROWS_PER_PERSON = 16.8  # the demo generator's average
ADMIN_URLS = {
    "postgresql": os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("BENCH_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
BACKENDS = ("sqlite", "postgresql", "mariadb")
KEYRING = Keyring({"k1": Key("k1", b"benchmark key benchmark key 32b!")}, "k1", "k1", origin="benchmark")


class RssSampler:
    """Samples this process's resident memory every few milliseconds; reports the peak above the start."""

    def __init__(self) -> None:
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


MEASURED = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)
"""Runs a command and prints the peak resident kilobytes of the largest process it started (its own children
included), on stderr's last line: measured apart for each run, since a benchmark's own count only grows."""

CLI_SECRET = base64.b64encode(b"daily run benchmark key, not secret").decode()


def copied_estate_env(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a command working on the SQLite estate copied to `folder`/estate, with its own
    control database, var folder and Dagster home under `folder`, and RETENTION_ `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env |= {f"RETENTION_{s.upper()}_URL": f"sqlite:///{folder / 'estate' / f'{s}.db'}" for s in SOURCES}
    env |= {
        "RETENTION_CONTROL_URL": f"sqlite:///{folder / 'control.db'}",
        "RETENTION_KEY": f"k1:{CLI_SECRET}",
        "RETENTION_VAR": str(folder / "var"),
        "DAGSTER_HOME": str(folder / "var" / "dagster"),
    }
    return env | {f"RETENTION_{name.upper()}": value for name, value in settings.items()}


def measured_run(command: list[str], env: dict[str, str], what: str) -> tuple[float, int]:
    """Seconds and peak resident kilobytes of a command run from the project's folder; a failed command stops
    the benchmark with its output. Written files are flushed first, so that no run pays for the one before."""
    os.sync()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout}{done.stderr}")
    return seconds, int(done.stderr.strip().splitlines()[-1])


def folder_size(path: Path) -> int:
    """Bytes of every file under `path` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def database_urls(backend: str, label: str, folder: Path) -> dict[str, str]:
    """Fresh databases for one estate (dropped and recreated on the servers)."""
    urls = {}
    for source in (*SOURCES, "control"):
        name = f"bench_{label}_{source}"
        if backend == "sqlite":
            path = folder / f"{name}.db"
            path.unlink(missing_ok=True)
            urls[source] = f"sqlite:///{path}"
            continue
        drop_database(backend, name)
        on_server(backend, quote(backend, "CREATE DATABASE {}", name))
        urls[source] = sa.make_url(ADMIN_URLS[backend]).set(database=name).render_as_string(hide_password=False)
    return urls


def quote(backend: str, template: str, *names: str) -> str:
    mark = '"' if backend == "postgresql" else "`"
    return template.format(*(f"{mark}{n}{mark}" for n in names))


def drop_database(backend: str, name: str) -> None:
    force = " WITH (FORCE)" if backend == "postgresql" else ""
    on_server(backend, quote(backend, "DROP DATABASE IF EXISTS {}", name) + force)


def on_server(backend: str, *statements: str) -> None:
    admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    admin.dispose()


def count_rows(urls: dict[str, str]) -> int:
    """Rows in every table of the databases."""
    total = 0
    for url in urls.values():
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            for table in sa.inspect(engine).get_table_names():
                total += conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
        engine.dispose()
    return total


def connect_estate(urls: dict[str, str]) -> tuple[EstateConfig, Estate]:
    """The shipped configuration pointed at these databases (through the environment, as a run would be), and
    the estate connected, its control database at the newest schema."""
    for source in SOURCES:
        os.environ[f"RETENTION_{source.upper()}_URL"] = urls[source]
    os.environ["RETENTION_CONTROL_URL"] = urls["control"]
    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    estate = Estate.connect(config.catalog)
    assert estate.control is not None
    ensure_schema(estate.control)
    return config, estate

"""Apply step against a hand-written SQL baseline, at 100 thousand and 1 million rows (prints figures).

For each size and database: two identical demo estates are generated and kept as pristine copies; the engine
plans on the first. Then, `--repeat` times, both estates are restored from their copies, the engine applies the
plan to the first (ledger, batches, verification material and all) and the baseline makes exactly the same
changes on the second with plain DELETE ... WHERE pk IN (...) and UPDATE statements whose new values are read,
untimed, from the engine's result. Both estates must end identical. A machine whose speed drifts moves one
run's ratio either way, so the median of the repetitions is printed, and each ratio beside it.

Printed per size and database: rows in the estate, actions applied, the time and peak memory of tagging and
planning, seconds and rows per second for both (medians), the ratio engine/baseline, and how much the process
memory grew during apply (sampled; the largest of the repetitions), which should not grow with the table.

    python benchmarks/apply_benchmark.py --sizes 100000 1000000 --backends sqlite postgresql
"""

import argparse
import datetime as dt
import hashlib
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

from anonymizers.keys import Key
from retention.apply.applier import SourceApplier
from retention.apply.heap import frozen_heap
from retention.config.database import MARKER_TABLE
from retention.config.keys import Keyring
from retention.config.loading import load_config
from retention.config.policy import Action
from retention.daily.flow import compute_plan
from retention.demo.generator import generate_demo_estate
from retention.rules.references import children_first
from retention.storage.engines import Estate
from retention.storage.schema import ensure_schema

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("enrolment", "newsletter", "elearning")
ROWS_PER_PERSON = 16.8  # the demo generator's average
ANCHOR = dt.date(2026, 6, 1)
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KEYRING = Keyring({"k1": Key("k1", b"benchmark key benchmark key 32b!")}, "k1", "k1", origin="benchmark")


class RssSampler:
    """Samples this process's resident memory every few milliseconds; reports the peak above the start."""

    def __init__(self) -> None:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.005)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def _rss() -> int:
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
        _on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        urls[source] = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return urls


def keep_pristine(backend: str, urls: dict[str, str], folder: Path) -> None:
    """A copy of each database as generated, to restore before every repetition."""
    for url in urls.values():
        name = sa.make_url(url).database or ""
        if backend == "sqlite":
            shutil.copyfile(name, folder / f"{Path(name).name}.pristine")
        else:
            _server_copy(url, f"{name}_pristine", name)


def restore(backend: str, urls: dict[str, str], folder: Path) -> None:
    for url in urls.values():
        name = sa.make_url(url).database or ""
        if backend == "sqlite":
            for extra in ("-wal", "-shm", "-journal"):
                Path(f"{name}{extra}").unlink(missing_ok=True)
            shutil.copyfile(folder / f"{Path(name).name}.pristine", name)
        else:
            _server_copy(url, name, f"{name}_pristine")


def drop_pristine(backend: str, urls: dict[str, str], folder: Path) -> None:
    for url in urls.values():
        name = sa.make_url(url).database or ""
        if backend == "sqlite":
            (folder / f"{Path(name).name}.pristine").unlink(missing_ok=True)
        else:
            _on_server(f'DROP DATABASE IF EXISTS "{name}_pristine" WITH (FORCE)')


def _server_copy(url: str, target: str, template: str) -> None:
    _on_server(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)', f'CREATE DATABASE "{target}" TEMPLATE "{template}"')


def _on_server(*statements: str) -> None:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    admin.dispose()


def estate_digest(urls: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for source in SOURCES:
        engine = sa.create_engine(urls[source])
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            for table in md.sorted_tables:
                if table.name == MARKER_TABLE:
                    continue
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
                    digest.update(repr(tuple(row)).encode())
        engine.dispose()
    return digest.hexdigest()


def parents_of(table: sa.Table) -> set[str]:
    """The tables that `table` references, itself left out (the order the engine applies in)."""
    return {fk.referred_table.name for fk in table.foreign_key_constraints} - {table.name}


def baseline(plan_entries: dict, engine_urls: dict[str, str], urls: dict[str, str], config) -> tuple[float, int]:
    """The same changes as plain SQL. Returns (seconds spent writing, statements' rows)."""
    seconds = 0.0
    rows = 0
    for source in SOURCES:
        done_engine = sa.create_engine(engine_urls[source])
        target = sa.create_engine(urls[source])
        tables = [t for (s, t) in plan_entries if s == source]
        reflected = sa.MetaData()
        reflected.reflect(target, only=tables)
        parents = {t: parents_of(reflected.tables[t]) for t in tables}
        for table in children_first(tables, parents.__getitem__):
            entries = plan_entries[(source, table)]
            pk = config.catalog.table(source, table).pk
            deletes = sorted(set(entries.loc[entries["action"] == Action.DELETE.value, "pk"].tolist()))
            fields: dict[object, set[str]] = defaultdict(set)
            for key, action, names in zip(entries["pk"], entries["action"], entries["fields"], strict=True):
                if action != Action.DELETE.value and key not in set(deletes):
                    fields[key].update(names)
            groups: dict[tuple[str, ...], list[object]] = defaultdict(list)
            for key, names in fields.items():
                groups[tuple(sorted(names))].append(key)
            prepared = []
            for names, keys in groups.items():
                sa_table = sa.Table(table, sa.MetaData(), autoload_with=done_engine)
                with done_engine.connect() as conn:
                    values = {}
                    for i in range(0, len(keys), 5000):
                        query = sa.select(sa_table.c[pk], *(sa_table.c[n] for n in names))
                        for row in conn.execute(query.where(sa_table.c[pk].in_(keys[i : i + 5000]))):
                            values[row[0]] = tuple(row[1:])
                prepared.append((names, [(*values[k], k) for k in keys]))
            started = time.perf_counter()
            raw = target.raw_connection()
            try:
                cursor = raw.cursor()
                mark = "?" if target.dialect.name == "sqlite" else "%s"
                for i in range(0, len(deletes), 2000):
                    chunk = deletes[i : i + 2000]
                    cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join([mark] * len(chunk))})", chunk)
                    raw.commit()
                for names, params in prepared:
                    sets = ", ".join(f"{n} = {mark}" for n in names)
                    for i in range(0, len(params), 2000):
                        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = {mark}", params[i : i + 2000])
                        raw.commit()
                rows += len(deletes) + sum(len(p) for _, p in prepared)
            finally:
                raw.close()
            seconds += time.perf_counter() - started
        done_engine.dispose()
        target.dispose()
    return seconds, rows


def run_one(size: int, backend: str, folder: Path, repeat: int) -> None:
    people = max(50, round(size / ROWS_PER_PERSON))
    label = f"{backend[:2]}{size // 1000}k"
    engine_urls = database_urls(backend, f"{label}_e", folder)
    base_urls = {s: url for s, url in database_urls(backend, f"{label}_b", folder).items() if s in SOURCES}
    for urls in (engine_urls, base_urls):
        generate_demo_estate({s: urls[s] for s in SOURCES}, people=people, seed=3, anchor=ANCHOR, replace=True)
    counts = 0
    for source in SOURCES:
        engine = sa.create_engine(engine_urls[source])
        with engine.connect() as conn:
            for table in sa.inspect(engine).get_table_names():
                counts += conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()
        engine.dispose()

    for source in SOURCES:
        os.environ[f"RETENTION_{source.upper()}_URL"] = engine_urls[source]
    os.environ["RETENTION_CONTROL_URL"] = engine_urls["control"]
    config = load_config(ROOT / "config" / "catalog.yaml", ROOT / "config" / "policy.yaml")
    estate = Estate.connect(config.catalog)
    assert estate.control is not None
    ensure_schema(estate.control)
    started = time.perf_counter()
    with RssSampler() as planning_memory:
        result = compute_plan(config, estate, KEYRING, ANCHOR)
    plan_seconds = time.perf_counter() - started
    plan = result.plan
    del result
    estate.dispose()
    for urls in (engine_urls, base_urls):
        keep_pristine(backend, urls, folder)

    engine_runs, base_runs, ratios, growth, same = [], [], [], 0.0, False
    for repetition in range(repeat):
        for urls in (engine_urls, base_urls):
            restore(backend, urls, folder)
        estate = Estate.connect(config.catalog)
        assert estate.control is not None
        started = time.perf_counter()
        with RssSampler() as apply_memory:
            for source in SOURCES:
                applier = SourceApplier(
                    config, source, estate.sources[source], estate.control, KEYRING, run_id="benchmark", as_of=ANCHOR
                )
                with frozen_heap():  # as the apply step does
                    applier.apply(plan)
        engine_runs.append(time.perf_counter() - started)
        growth = max(growth, apply_memory.growth_mb)
        estate.dispose()
        base_seconds, base_rows = baseline(plan.entries, engine_urls, base_urls, config)
        base_runs.append(base_seconds)
        ratios.append(engine_runs[-1] / base_seconds)
        if repetition == repeat - 1:
            same = estate_digest(engine_urls) == estate_digest(base_urls)
    for urls in (engine_urls, base_urls):
        drop_pristine(backend, urls, folder)
    touched = sum(plan.touched(t) for t in plan.entries)
    engine_seconds, base_seconds = statistics.median(engine_runs), statistics.median(base_runs)
    print(
        f"{backend:<11}{counts:>10,}{touched:>10,}{plan_seconds:>9.1f}{planning_memory.growth_mb:>9.0f}"
        f"{engine_seconds:>9.1f}{touched / engine_seconds:>11,.0f}"
        f"{base_seconds:>9.1f}{base_rows / base_seconds:>11,.0f}"
        f"{statistics.median(ratios):>7.2f}{growth:>9.0f}  {'same' if same else 'DIFFERENT'}"
        f"  ({' '.join(f'{r:.2f}' for r in ratios)})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--folder", type=Path, default=None, help="where SQLite files go (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="apply and baseline runs per estate (default 3)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="retention-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(
        f"{'database':<11}{'rows':>10}{'touched':>10}{'plan s':>9}{'plan MB':>9}{'apply s':>9}{'rows/s':>11}"
        f"{'base s':>9}{'rows/s':>11}{'ratio':>7}{'apply MB':>9}  result"
    )
    for size in args.sizes:
        for backend in args.backends:
            run_one(size, backend, folder, args.repeat)


if __name__ == "__main__":
    main()

"""Apply step against two hand-written SQL baselines, at 100 thousand and 1 million rows (prints figures).

For each size and database (SQLite, PostgreSQL, MariaDB): two identical demo estates are generated and kept as
pristine copies; the engine plans on the first. Both baselines make exactly the same changes as the engine's
apply, with new values read, untimed, from the engine's result:

- per-row: DELETE ... WHERE pk IN (2,000 keys) and one UPDATE per row, a commit every 2,000 rows;
- set-based, as one would write it by hand: on PostgreSQL the new values COPYed into a temporary table and one
  UPDATE ... FROM it, deletes by = ANY of 50,000 keys, each set of cleared fields in one UPDATE; on SQLite
  executemany of the DELETEs and UPDATEs in one transaction; on MariaDB a keyed temporary table filled by
  executemany and one joined UPDATE, DELETE (and clearing UPDATE) ... IN of 50,000 keys.

Before any timing, the engine and each baseline run on identical copies and must leave identical tables (table
digests), or the benchmark stops: a ratio is only meaningful between the same work. Then, `--repeat` times, the
estates are restored and the three are timed. A machine whose speed drifts moves one run's ratio either way, so
medians are printed, and each run's ratios beside them.

Printed per size and database: rows in the estate, rows touched, the time and memory growth of tagging and
planning, the engine's seconds and rows per second, the set-based and per-row seconds, rows the baselines
write, the ratios engine/set-based and engine/per-row, and how much the process memory grew during apply
(sampled), which should not grow with the table.

    python benchmarks/apply_benchmark.py --sizes 100000 1000000 --backends sqlite postgresql mariadb
"""

import argparse
import datetime as dt
import hashlib
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from estates import (
    ADMIN_URLS,
    BACKENDS,
    KEYRING,
    ROWS_PER_PERSON,
    SOURCES,
    RssSampler,
    connect_estate,
    count_rows,
    database_urls,
    drop_database,
    on_server,
    quote,
)

from retention.apply.applier import SourceApplier
from retention.apply.heap import frozen_heap
from retention.config.database import MARKER_TABLE
from retention.config.estate import EstateConfig
from retention.config.policy import Action
from retention.daily.flow import compute_plan
from retention.daily.planning import Plan
from retention.demo.generator import generate_demo_estate
from retention.rules.references import children_first
from retention.storage.engines import Estate

ANCHOR = dt.date(2026, 6, 1)
BIG_BATCH = 50_000  # keys per DELETE or clearing UPDATE in the set-based baseline


def keep_pristine(backend: str, urls: dict[str, str], folder: Path) -> None:
    """A copy of each database as generated, to restore before every repetition."""
    for url in urls.values():
        name = sa.make_url(url).database or ""
        if backend == "sqlite":
            shutil.copyfile(name, folder / f"{Path(name).name}.pristine")
        else:
            _server_copy(backend, f"{name}_pristine", name)


def restore(backend: str, urls: dict[str, str], folder: Path) -> None:
    for url in urls.values():
        name = sa.make_url(url).database or ""
        if backend == "sqlite":
            for extra in ("-wal", "-shm", "-journal"):
                Path(f"{name}{extra}").unlink(missing_ok=True)
            shutil.copyfile(folder / f"{Path(name).name}.pristine", name)
        else:
            _server_copy(backend, name, f"{name}_pristine")


def drop_pristine(backend: str, urls: dict[str, str], folder: Path) -> None:
    for url in urls.values():
        name = sa.make_url(url).database or ""
        if backend == "sqlite":
            (folder / f"{Path(name).name}.pristine").unlink(missing_ok=True)
        else:
            drop_database(backend, f"{name}_pristine")


def _server_copy(backend: str, target: str, template: str) -> None:
    """PostgreSQL copies a database from a template; MariaDB has none, so each table is created from its own
    SHOW CREATE TABLE (which keeps the foreign keys, unlike CREATE TABLE ... LIKE) and filled by one INSERT."""
    drop_database(backend, target)
    if backend == "postgresql":
        on_server(backend, quote(backend, "CREATE DATABASE {} TEMPLATE {}", target, template))
        return
    admin = sa.create_engine(ADMIN_URLS[backend], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(quote(backend, "CREATE DATABASE {}", target))
        conn.exec_driver_sql(quote(backend, "USE {}", target))
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        found = conn.exec_driver_sql(quote(backend, "SHOW FULL TABLES FROM {}", template)).all()
        tables = [row[0] for row in found if row[1] == "BASE TABLE"]
        for table in tables:
            conn.exec_driver_sql(
                conn.exec_driver_sql(quote(backend, "SHOW CREATE TABLE {}.{}", template, table)).one()[1]
            )
        for table in tables:
            conn.exec_driver_sql(
                quote(backend, "INSERT INTO {}.{} SELECT * FROM {}.{}", target, table, template, table)
            )
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


@dataclass
class TableChanges:
    """What the engine changed in one table, read back (untimed) so both baselines write the same values."""

    table: str
    pk: str
    deletes: list[object]
    clears: list[tuple[tuple[str, ...], tuple[object, ...], list[object]]]  # fields, their constants, keys
    updates: list[tuple[tuple[str, ...], list[tuple[object, ...]]]]  # fields, rows of (*values, key)


def prepare(plan_entries: dict, engine_urls: dict[str, str], config: EstateConfig) -> dict[str, list[TableChanges]]:
    """Per source, children first, the changes of each table: a delete wins, a field both cleared and
    pseudonymised is cleared (as the engine merges them); new values come from the engine's result."""
    changes: dict[str, list[TableChanges]] = {}
    for source in SOURCES:
        done_engine = sa.create_engine(engine_urls[source])
        tables = [t for (s, t) in plan_entries if s == source]
        reflected = sa.MetaData()
        reflected.reflect(done_engine, only=tables)
        parents = {t: parents_of(reflected.tables[t]) for t in tables}
        changes[source] = []
        for table in children_first(tables, parents.__getitem__):
            entries = plan_entries[(source, table)]
            pk = config.catalog.table(source, table).pk
            deletes = sorted(set(entries.loc[entries["action"] == Action.DELETE.value, "pk"].tolist()))
            deleted = set(deletes)
            cleared: dict[object, set[str]] = defaultdict(set)
            pseudonymised: dict[object, set[str]] = defaultdict(set)
            for key, action, names in zip(entries["pk"], entries["action"], entries["fields"], strict=True):
                if key not in deleted:
                    (cleared if action == Action.CLEAR.value else pseudonymised)[key].update(names)
            sa_table = reflected.tables[table]
            with done_engine.connect() as conn:
                clears = []
                for names, keys in _grouped(cleared).items():
                    found = {row[1:] for row in _read(conn, sa_table, pk, names, keys)}
                    if len(found) != 1:
                        raise SystemExit(f"{source}.{table}: cleared fields {names} hold {len(found)} values")
                    clears.append((names, found.pop(), keys))
                rest = {key: names - cleared.get(key, set()) for key, names in pseudonymised.items()}
                updates = []
                for names, keys in _grouped(rest).items():
                    values = {row[0]: tuple(row[1:]) for row in _read(conn, sa_table, pk, names, keys)}
                    updates.append((names, [(*values[k], k) for k in keys]))
            changes[source].append(TableChanges(table, pk, deletes, clears, updates))
        done_engine.dispose()
    return changes


def _grouped(fields: dict[object, set[str]]) -> dict[tuple[str, ...], list[object]]:
    groups: dict[tuple[str, ...], list[object]] = defaultdict(list)
    for key, names in fields.items():
        if names:
            groups[tuple(sorted(names))].append(key)
    return groups


def _read(conn: sa.Connection, table: sa.Table, pk: str, names: tuple[str, ...], keys: list[object]) -> list[sa.Row]:
    rows: list[sa.Row] = []
    for i in range(0, len(keys), 5000):
        query = sa.select(table.c[pk], *(table.c[n] for n in names)).where(table.c[pk].in_(keys[i : i + 5000]))
        rows.extend(conn.execute(query).all())
    return rows


def per_row(changes: dict[str, list[TableChanges]], urls: dict[str, str]) -> tuple[float, int]:
    """The per-row baseline: DELETE ... IN of 2,000 keys, one UPDATE per row, a commit every 2,000 rows.
    Returns (seconds spent writing, rows written)."""
    seconds, rows = 0.0, 0
    for source, tables in changes.items():
        target = sa.create_engine(urls[source])
        mark = "?" if target.dialect.name == "sqlite" else "%s"
        started = time.perf_counter()
        raw = target.raw_connection()
        try:
            cursor = raw.cursor()
            for change in tables:
                table, pk = change.table, change.pk
                for i in range(0, len(change.deletes), 2000):
                    chunk = change.deletes[i : i + 2000]
                    cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join([mark] * len(chunk))})", chunk)
                    raw.commit()
                writes = [(n, [(*c, k) for k in keys]) for n, c, keys in change.clears] + change.updates
                for names, params in writes:
                    sets = ", ".join(f"{n} = {mark}" for n in names)
                    for i in range(0, len(params), 2000):
                        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = {mark}", params[i : i + 2000])
                        raw.commit()
                rows += len(change.deletes) + sum(len(p) for _, p in writes)
        finally:
            raw.close()
        seconds += time.perf_counter() - started
        target.dispose()
    return seconds, rows


def set_based(changes: dict[str, list[TableChanges]], urls: dict[str, str]) -> float:
    """The set-based baseline, as one would write it by hand for each database, one transaction per source.
    Returns the seconds spent writing."""
    seconds = 0.0
    for source, tables in changes.items():
        target = sa.create_engine(urls[source])
        writer = {"sqlite": _set_sqlite, "postgresql": _set_postgresql}.get(target.dialect.name, _set_mariadb)
        started = time.perf_counter()
        raw = target.raw_connection()
        try:
            cursor = raw.cursor()
            for change in tables:
                writer(cursor, change)
            raw.commit()
        finally:
            raw.close()
        seconds += time.perf_counter() - started
        target.dispose()
    return seconds


def _set_sqlite(cursor: Any, change: TableChanges) -> None:
    """SQLite runs in-process: executemany in one transaction is as set-based as it gets."""
    table, pk = change.table, change.pk
    cursor.executemany(f"DELETE FROM {table} WHERE {pk} = ?", [(k,) for k in change.deletes])
    for names, constants, keys in change.clears:
        sets = ", ".join(f"{n} = ?" for n in names)
        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = ?", [(*constants, k) for k in keys])
    for names, params in change.updates:
        sets = ", ".join(f"{n} = ?" for n in names)
        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = ?", params)


def _set_postgresql(cursor: Any, change: TableChanges) -> None:
    """COPY the new values into a temporary table and join it in one UPDATE; deletes and clears by = ANY."""
    table, pk = change.table, change.pk
    for i in range(0, len(change.deletes), BIG_BATCH):
        cursor.execute(f"DELETE FROM {table} WHERE {pk} = ANY(%s)", (change.deletes[i : i + BIG_BATCH],))
    for names, constants, keys in change.clears:
        sets = ", ".join(f"{n} = %s" for n in names)
        cursor.execute(f"UPDATE {table} SET {sets} WHERE {pk} = ANY(%s)", (*constants, keys))
    for number, (names, params) in enumerate(change.updates):
        new = f"bench_new_{table}_{number}"
        columns = ", ".join((*names, pk))
        cursor.execute(f"CREATE TEMPORARY TABLE {new} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
        with cursor.copy(f"COPY {new} ({columns}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        cursor.execute(f"ANALYZE {new}")
        sets = ", ".join(f"{n} = new.{n}" for n in names)
        cursor.execute(f"UPDATE {table} SET {sets} FROM {new} AS new WHERE {table}.{pk} = new.{pk}")


def _set_mariadb(cursor: Any, change: TableChanges) -> None:
    """A keyed temporary table filled by executemany (PyMySQL folds it into multi-row INSERTs) and one
    joined UPDATE; deletes and clears by IN lists of many keys."""
    table, pk = change.table, change.pk
    for i in range(0, len(change.deletes), BIG_BATCH):
        chunk = change.deletes[i : i + BIG_BATCH]
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(chunk))})", chunk)
    for names, constants, keys in change.clears:
        sets = ", ".join(f"{n} = %s" for n in names)
        for i in range(0, len(keys), BIG_BATCH):
            chunk = keys[i : i + BIG_BATCH]
            cursor.execute(
                f"UPDATE {table} SET {sets} WHERE {pk} IN ({', '.join(['%s'] * len(chunk))})", (*constants, *chunk)
            )
    for number, (names, params) in enumerate(change.updates):
        new = f"bench_new_{table}_{number}"
        columns = ", ".join((*names, pk))
        cursor.execute(f"CREATE TEMPORARY TABLE {new} (PRIMARY KEY ({pk})) SELECT {columns} FROM {table} LIMIT 0")
        marks = ", ".join(["%s"] * (len(names) + 1))
        cursor.executemany(f"INSERT INTO {new} ({columns}) VALUES ({marks})", params)
        sets = ", ".join(f"{table}.{n} = new.{n}" for n in names)
        cursor.execute(f"UPDATE {table} JOIN {new} AS new ON {table}.{pk} = new.{pk} SET {sets}")
        cursor.execute(f"DROP TEMPORARY TABLE {new}")


def apply_engine(config: EstateConfig, plan: Plan) -> tuple[float, float]:
    """The engine's apply step, source by source. Returns (seconds, memory growth in MB)."""
    estate = Estate.connect(config.catalog)
    assert estate.control is not None
    started = time.perf_counter()
    with RssSampler() as memory:
        for source in SOURCES:
            applier = SourceApplier(
                config, source, estate.sources[source], estate.control, KEYRING, run_id="benchmark", as_of=ANCHOR
            )
            with frozen_heap():  # as the apply step does
                applier.apply(plan)
    seconds = time.perf_counter() - started
    estate.dispose()
    return seconds, memory.growth_mb


def check_same(
    backend: str, folder: Path, config: EstateConfig, plan: Plan, engine_urls: dict, base_urls: dict
) -> None:
    """Untimed, before any timing: the engine and each baseline, run on identical copies of the estate, must
    leave identical tables, or the ratios would compare unlike work. Fails loudly otherwise."""
    for urls in (engine_urls, base_urls):
        restore(backend, urls, folder)
    apply_engine(config, plan)
    expected = estate_digest(engine_urls)
    changes = prepare(plan.entries, engine_urls, config)
    for name, run in (("per-row", per_row), ("set-based", set_based)):
        restore(backend, base_urls, folder)
        run(changes, base_urls)
        if estate_digest(base_urls) != expected:
            raise SystemExit(f"{backend}: the {name} baseline leaves a database that differs from the engine's")


def run_one(size: int, backend: str, folder: Path, repeat: int) -> None:
    people = max(50, round(size / ROWS_PER_PERSON))
    label = f"{backend[:2]}{size // 1000}k"
    engine_urls = database_urls(backend, f"{label}_e", folder)
    base_urls = {s: url for s, url in database_urls(backend, f"{label}_b", folder).items() if s in SOURCES}
    for urls in (engine_urls, base_urls):
        generate_demo_estate({s: urls[s] for s in SOURCES}, people=people, seed=3, anchor=ANCHOR, replace=True)
    counts = count_rows({s: engine_urls[s] for s in SOURCES})

    config, estate = connect_estate(engine_urls)
    assert estate.control is not None
    started = time.perf_counter()
    with RssSampler() as planning_memory:
        result = compute_plan(config, estate, KEYRING, ANCHOR)
    plan_seconds = time.perf_counter() - started
    plan = result.plan
    del result
    estate.dispose()
    for urls in (engine_urls, base_urls):
        keep_pristine(backend, urls, folder)
    check_same(backend, folder, config, plan, engine_urls, base_urls)

    engine_runs, set_runs, row_runs, growth = [], [], [], 0.0
    set_ratios, row_ratios = [], []
    for _ in range(repeat):
        for urls in (engine_urls, base_urls):
            restore(backend, urls, folder)
        seconds, grown = apply_engine(config, plan)
        engine_runs.append(seconds)
        growth = max(growth, grown)
        changes = prepare(plan.entries, engine_urls, config)
        row_seconds, base_rows = per_row(changes, base_urls)
        row_runs.append(row_seconds)
        restore(backend, base_urls, folder)
        set_runs.append(set_based(changes, base_urls))
        set_ratios.append(engine_runs[-1] / set_runs[-1])
        row_ratios.append(engine_runs[-1] / row_runs[-1])
    for urls in (engine_urls, base_urls):
        drop_pristine(backend, urls, folder)
    touched = sum(plan.touched(t) for t in plan.entries)
    engine_seconds = statistics.median(engine_runs)
    print(
        f"{backend:<11}{counts:>10,}{touched:>10,}{plan_seconds:>8.1f}{planning_memory.growth_mb:>8.0f}"
        f"{engine_seconds:>9.2f}{touched / engine_seconds:>10,.0f}"
        f"{statistics.median(set_runs):>8.2f}{statistics.median(row_runs):>8.2f}{base_rows:>10,}"
        f"{statistics.median(set_ratios):>8.2f}{statistics.median(row_ratios):>8.2f}{growth:>9.0f}"
        f"  ({' '.join(f'{r:.2f}' for r in set_ratios)} / {' '.join(f'{r:.2f}' for r in row_ratios)})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["sqlite", "postgresql"])
    parser.add_argument("--folder", type=Path, default=None, help="where SQLite files go (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of apply and baselines (default 3)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="retention-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    shown = ["--folder", "DIR"] if args.folder else []  # the command as run, without this machine's paths
    argv = [*sys.argv[1:]]
    if args.folder:
        at = argv.index("--folder") if "--folder" in argv else -1
        argv = argv[:at] + argv[at + 2 :] if at >= 0 else [a for a in argv if not a.startswith("--folder=")]
    print(f"$ python benchmarks/apply_benchmark.py {shlex.join([*argv, *shown])}".rstrip())
    print(
        f"{'database':<11}{'rows':>10}{'touched':>10}{'plan s':>8}{'plan MB':>8}{'engine s':>9}{'rows/s':>10}"
        f"{'set s':>8}{'row s':>8}{'written':>10}{'eng/set':>8}{'eng/row':>8}{'apply MB':>9}"
        "  (each run: eng/set / eng/row)"
    )
    for size in args.sizes:
        for backend in args.backends:
            run_one(size, backend, folder, args.repeat)


if __name__ == "__main__":
    main()

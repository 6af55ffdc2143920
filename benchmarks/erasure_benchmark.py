"""One person's erasure, found through the subject index and found by reading the identifier tables whole
(what a request did before the index, and what it still does for a table that declares no `changed_at`).

For each size and database: a demo estate is generated, the daily run's snapshot and subject index are taken
(the first day writes every row's subject, the second only what changed: both timed), then the two most
recently active customers after a first one (which pays for starting what every run starts) are erased by
e-mail, one through the index and one with the index set aside. Each
erasure is the whole request as the CLI carries it out: leases, reading the person, plan, apply, verification
and receipt. Printed per size and database: rows in the estate, the index's two days, each erasure's seconds,
rows it changed and memory growth, and whole read / index.

    python benchmarks/erasure_benchmark.py --sizes 1000000 10000000 --backends sqlite postgresql
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from estates import BACKENDS, KEYRING, ROWS_PER_PERSON, SOURCES, RssSampler, connect_estate, count_rows, database_urls

from retention.config.catalog import IdentifierKind
from retention.config.loading import EstateConfig
from retention.config.requests import load_request_settings
from retention.daily.flow import index_subjects
from retention.daily.snapshot import snapshot_source
from retention.demo.generator import generate_demo_estate
from retention.requests.kinds import RequestKind, RequestStatus
from retention.requests.register import register_request
from retention.requests.service import carry_out_request
from retention.storage.engines import Estate
from retention.storage.schema import index_marks

ANCHOR = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def daily_index(config: EstateConfig, estate: Estate) -> float:
    """Seconds of the daily run's snapshot and subject index (what keeps the stored index current)."""
    assert estate.control is not None
    started = time.perf_counter()
    snapshots = {
        source: snapshot_source(engine, config.catalog, source, KEYRING.subject, config.policy.timezone)
        for source, engine in estate.sources.items()
    }
    index_subjects(config, snapshots, KEYRING.subject, estate.control)
    return time.perf_counter() - started


def recent_emails(url: str) -> list[str]:
    """The e-mails of the three most recently active customers."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT email FROM customers WHERE email IS NOT NULL ORDER BY updated_at DESC, customer_id LIMIT 3")
        )
        found = [r[0] for r in rows]
    engine.dispose()
    return found


def erase(config: EstateConfig, estate: Estate, email: str) -> tuple[float, int, float]:
    """Seconds, rows changed and memory growth (MB) of one erasure request, as `retention request erase`."""
    assert estate.control is not None
    request_id = register_request(
        estate.control,
        KEYRING.subject,
        RequestKind.ERASURE,
        {IdentifierKind.EMAIL: email},
        load_request_settings(config),
        config.policy.timezone,
        regions=config.catalog.regions(),
    )
    started = time.perf_counter()
    with RssSampler() as memory:
        outcome = carry_out_request(config, estate, KEYRING, request_id, run_id=f"bench-{request_id}", now=NOW)
    seconds = time.perf_counter() - started
    if outcome.status is not RequestStatus.DONE or outcome.receipt is None or not outcome.receipt.found:
        sys.exit(f"the erasure did not complete: {outcome.summary}")
    changed = sum(t.deleted + t.pseudonymised for t in outcome.receipt.tables)
    return seconds, changed, memory.growth_mb


def run_one(size: int, backend: str, folder: Path) -> None:
    people = max(50, round(size / ROWS_PER_PERSON))
    urls = database_urls(backend, f"er{size // 1000}k", folder)
    generate_demo_estate({s: urls[s] for s in SOURCES}, people=people, seed=5, anchor=ANCHOR, replace=True)
    rows = count_rows({s: urls[s] for s in SOURCES})
    config, estate = connect_estate(urls)
    assert estate.control is not None
    first_day, second_day = daily_index(config, estate), daily_index(config, estate)
    warm_up, by_index_email, whole_email = recent_emails(urls["enrolment"])
    erase(config, estate, warm_up)  # the first request of a process starts the ledger's writer and the rest
    by_index = erase(config, estate, by_index_email)
    with estate.control.begin() as conn:
        conn.execute(index_marks.delete())
    whole = erase(config, estate, whole_email)
    estate.dispose()
    print(
        f"{backend:<10} {rows:>11,} {first_day:>9.1f} {second_day:>9.1f} "
        f"{by_index[0]:>8.2f} {by_index[1]:>5} {by_index[2]:>6.0f} "
        f"{whole[0]:>8.2f} {whole[1]:>5} {whole[2]:>6.0f} {whole[0] / by_index[0]:>7.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000], help="rows in the estate")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["sqlite", "postgresql"])
    parser.add_argument("--folder", type=Path, help="where the SQLite files go (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"{'database':<10} {'rows':>11} {'index d1':>9} {'index d2':>9} "
            f"{'index s':>8} {'rows':>5} {'MB':>6} {'whole s':>8} {'rows':>5} {'MB':>6} {'whole/i':>7}"
        )
        for size in args.sizes:
            for backend in args.backends:
                run_one(size, backend, folder)


if __name__ == "__main__":
    main()

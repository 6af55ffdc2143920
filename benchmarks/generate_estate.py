"""How fast the demo-estate generator fills databases: total rows, seconds and rows per second.

    python benchmarks/generate_estate.py --people 200000 --out-dir var/bench-estate
    python benchmarks/generate_estate.py --people 20000 \
        --url-template "postgresql+psycopg://postgres@127.0.0.1:5432/bench_{source}"

Existing demo tables at the target are dropped and recreated (the benchmark measures a fresh estate).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

from retention.demo.generator import generate_demo_estate
from retention.demo.schema import DEMO_SOURCES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000, help="size of the crowd (default 200000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--anchor", type=datetime.date.fromisoformat, default=None, help="the estate's today")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--out-dir", type=Path, help="folder for one SQLite file per source (default var/bench-estate)")
    target.add_argument("--url-template", help="a SQLAlchemy URL with {source}, e.g. sqlite:///x/{source}.db")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    if args.url_template:
        if "{source}" not in args.url_template:
            parser.error("--url-template must contain {source}")
        urls = {source: args.url_template.format(source=source) for source in DEMO_SOURCES}
    else:
        out_dir: Path = args.out_dir or Path("var/bench-estate")
        out_dir.mkdir(parents=True, exist_ok=True)
        urls = {source: f"sqlite:///{out_dir / f'{source}.db'}" for source in DEMO_SOURCES}

    shown: dict[str, float] = {}

    def progress(source: str, table: str, rows: int) -> None:
        now = time.perf_counter()
        if not args.quiet and now - shown.get(source, 0.0) >= 5.0:
            shown[source] = now
            print(f"  {source}.{table}: {rows:,} rows", file=sys.stderr, flush=True)

    started = time.perf_counter()
    counts = generate_demo_estate(
        urls, people=args.people, seed=args.seed, anchor=args.anchor, replace=True, progress=progress
    )
    seconds = time.perf_counter() - started

    total = 0
    for source, tables in counts.items():
        rows = sum(tables.values())
        total += rows
        detail = ", ".join(f"{name} {n:,}" for name, n in tables.items())
        print(f"{source}: {rows:,} rows ({detail})")
    print(f"people {args.people:,}, seed {args.seed}")
    print(f"total rows {total:,}")
    print(f"seconds {seconds:.1f}")
    print(f"rows per second {total / seconds:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

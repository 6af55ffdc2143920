"""Throughput of the anonymisers over 100,000 values (a benchmark, not a test: it prints figures)."""

import argparse
import time

import pandas as pd

import anonymizers
from anonymizers import ColumnSpec, Context, Key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--values", type=int, default=100_000)
    args = parser.parse_args()
    n = args.values
    key = Key("k1", b"b" * 32)
    values = pd.Series([f"user{i}@example.dk" for i in range(n)], dtype=object)
    seeds = pd.Series([f"s_{i:024x}" for i in range(n)], dtype=object)
    texts = pd.Series(
        [f"Skriv til anna{i}@example.dk eller ring 12 34 {i % 100:02d} 78, hilsen Anna" for i in range(n)],
        dtype=object,
    )
    print(f"{'anonymiser':<22}{'seconds':>10}{'values/s':>14}")
    for name, column, data in [
        ("token", ColumnSpec(max_length=64), values),
        ("surrogate_name", ColumnSpec(max_length=120), values),
        ("surrogate_email", ColumnSpec(max_length=200, unique=True), values),
        ("surrogate_phone", ColumnSpec(max_length=40), values),
        ("surrogate_username", ColumnSpec(max_length=60, unique=True), values),
        ("scrub_text", ColumnSpec(kind="text"), texts),
    ]:
        ctx = Context(key=key, column=column, seeds=seeds)
        started = time.perf_counter()
        anonymizers.get(name)(data, ctx)
        seconds = time.perf_counter() - started
        print(f"{name:<22}{seconds:>10.2f}{n / seconds:>14,.0f}")


if __name__ == "__main__":
    main()

"""Draws the surrogate pools from the pinned Faker and writes them to the file `anonymizers.pools` ships.

python -m anonymizers.draw_pools
"""

from __future__ import annotations

import json
from collections.abc import Callable

from faker import Faker

from anonymizers.pools import POOL_FILE, POOL_SEED, POOL_SIZE


def draw() -> dict[str, list[str]]:
    """The pools as the pinned Faker draws them from the fixed seed."""
    fake = Faker("da_DK")
    fake.seed_instance(POOL_SEED)

    def take(make: Callable[[], str]) -> list[str]:
        return [make() for _ in range(POOL_SIZE)]

    first, last, street = take(fake.first_name), take(fake.last_name), take(fake.street_name)
    return {"first": first, "last": last, "street": street, "place": take(lambda: f"{fake.postcode()} {fake.city()}")}


def main() -> None:
    POOL_FILE.write_text(json.dumps(draw(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {POOL_FILE.name}")


if __name__ == "__main__":
    main()

"""Draws the surrogate pools of every locale from the pinned Faker and writes the files `anonymizers.pools` ships.

python -m anonymizers.draw_pools
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from faker import Faker

from anonymizers.locales import LOCALES, get_locale
from anonymizers.pools import POOL_SEED, POOL_SIZE, pool_file


def draw(locale: str) -> dict[str, list[str]]:
    """The pools of one locale as the pinned Faker draws them from the fixed seed."""
    spec = get_locale(locale)
    fake = Faker(spec.name)
    fake.seed_instance(POOL_SEED)

    def take(make: Callable[[], str], keep: Callable[[str], bool] = bool) -> list[str]:
        values: list[str] = []
        while len(values) < POOL_SIZE:
            value = make()
            if keep(value):
                values.append(value)
        return values

    first, last = take(fake.first_name, _plain_name), take(fake.last_name, _plain_name)
    street = take(fake.street_name)
    return {"first": first, "last": last, "street": street, "place": take(lambda: _place(fake, spec.place))}


def _plain_name(name: str) -> bool:
    """Whether a drawn name reads as a name in every column and e-mail: capitalised words of letters (an
    apostrophe inside, as in O'Brien). German Faker also draws registry forms such as 'Hans D.', 'H.-Dieter',
    'Koch II' or 'auch Schlauchin', whose dots would make invalid e-mail addresses."""
    return all(
        word[:1].isupper() and word.replace("'", "").isalpha() and not word.isupper()
        for word in re.split(r"[ -]", name)
    )


def _place(fake: Faker, layout: str) -> str:
    """Postcode first, then city, whatever order the locale writes them in: the order Faker draws in is
    part of what the pools are."""
    postcode = fake.postcode()
    return layout.format(postcode=postcode, city=fake.city())


def main() -> None:
    for locale in LOCALES:
        path = pool_file(locale)
        path.write_text(json.dumps(draw(locale), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        print(f"wrote {path.name}")


if __name__ == "__main__":
    main()

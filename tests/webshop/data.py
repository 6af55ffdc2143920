"""A deterministic, small webshop estate with hand-built edge cases whose ids are reported in `WebshopFacts`.

Everything is drawn from `random.Random` seeded per source and from hard-coded lists (no Faker), so the same
(anchor, seed) gives the same rows on SQLite, PostgreSQL and MariaDB, and all history lies before `anchor`.
The edge cases sit at fixed ids so that tests can name them without searching the data.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from retention.storage.engines import make_engine
from tests.webshop.schema import (
    HR_DATE_FORMAT,
    SHOP_DATE_FORMAT,
    SHOP_TIMESTAMP_FORMAT,
    WEBSHOP_SOURCES,
    webshop_metadata,
)

Row = dict[str, Any]
Rows = dict[str, list[Row]]

CUSTOMERS = 60
PRODUCTS = 10
ORDERS = 150
MAX_LINES_PER_ORDER = 4
WISHLIST = 40
EMPLOYEES = 25
FORMER_EMPLOYEES = 8
SLIP_MONTHS = 24
"""Salary slips per employee: the last two years of employment, fewer for someone hired more recently."""
HISTORY_YEARS = 8
"""Customers, orders and wishlist rows lie in the eight years before the anchor."""

# The hand-built customers and employees, at fixed ids.
SPLIT_ORDERS_CUSTOMER = 1
INACTIVE_CUSTOMER = 2
ACTIVE_CUSTOMER = 3
UNIQUE_PHONE_CUSTOMER = 4
EARLY_CUSTOMER = 5  # created at the start of the history, so every order day has a customer who existed
LONG_SERVING_EMPLOYEES = (1, 2, 3)
SHARED_PHONE_EMPLOYEES = (4, 5)
FORMER_EMPLOYEE_IDS = tuple(range(EMPLOYEES - FORMER_EMPLOYEES + 1, EMPLOYEES + 1))
# Days before the anchor on which each former employee left: two more than five years ago, two within the year.
_LEAVING_DAYS_AGO = (2300, 1950, 1400, 1000, 620, 330, 150, 40)

_DAY = datetime.timedelta(days=1)

_EN_FIRST = (
    "Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "Oscar", "William", "James",
    "Henry", "Amelia", "Olivia", "Isla", "Emily", "Poppy", "Ava", "Isabella", "Jessica", "Lily", "Sophie",
    "Grace", "Ruby", "Evie", "Chloe", "Mia", "Eleanor", "Hannah", "Alice",
)  # fmt: skip
_EN_LAST = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
    "Patel", "Khan", "Hughes", "Edwards", "Turner", "O'Brien", "Harris", "Lewis", "Baker", "Cooper",
)  # fmt: skip
_EN_STREETS = (
    "High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road", "Park Avenue",
    "Queen's Road", "Kings Road", "Mill Lane", "The Crescent", "Albert Street", "Springfield Road",
)  # fmt: skip
_UK_POSTCODES = (
    ("SW1A 1AA", "London"),
    ("EC1A 1BB", "London"),
    ("W1A 0AX", "London"),
    ("N1 9GU", "London"),
    ("M1 1AE", "Manchester"),
    ("LS1 4DY", "Leeds"),
    ("B33 8TH", "Birmingham"),
    ("CR2 6XH", "Croydon"),
    ("BS1 4DJ", "Bristol"),
    ("EH1 1YZ", "Edinburgh"),
    ("CF10 1EP", "Cardiff"),
    ("NE1 7RU", "Newcastle upon Tyne"),
    ("L1 8JQ", "Liverpool"),
    ("G2 1DY", "Glasgow"),
    ("OX1 2JD", "Oxford"),
    ("CB2 1TN", "Cambridge"),
)
# Ofcom's ranges for drama: (area code without the trunk 0, the local number without its last three digits).
_UK_RANGES = (("20", "7946 0"), ("161", "496 0"), ("113", "496 0"), ("7700", "900"))
_EMAIL_DOMAINS = ("example.co.uk", "example.co.uk", "example.co.uk", "example.com")

_PRODUCTS = (
    ("Earl Grey loose-leaf tea, 250 g", Decimal("6.50")),
    ("English Breakfast tea bags, 80", Decimal("4.25")),
    ("Stoneware teapot, 1 l", Decimal("32.00")),
    ("Bone china mug", Decimal("12.95")),
    ("Tea strainer, stainless steel", Decimal("7.99")),
    ("Shortbread fingers, 300 g", Decimal("5.49")),
    ("Marmalade, Seville orange", Decimal("4.80")),
    ("Cast-iron kettle", Decimal("54.00")),
    ("Gift hamper, afternoon tea", Decimal("45.00")),
    ("Linen tea towel", Decimal("9.50")),
)
_GIFT_MESSAGES = (
    "Happy birthday, {first}! With love",
    "Congratulations on the new house!",
    "Merry Christmas from all of us",
    "Get well soon, {first} x",
    "Thank you for everything",
    "Happy anniversary, love {first}",
)
_WISHLIST_NOTES = ("for Mum's birthday", "wait for the sale", "ask about the blue one", "Christmas list")

_DE_FIRST = (
    "Jürgen", "Anna", "Lukas", "Sophie", "Maximilian", "Lena", "Jonas", "Marie", "Felix", "Hannah", "Tobias",
    "Katrin", "Stefan", "Sabine", "Thomas", "Julia", "Michael", "Laura", "Andreas", "Claudia", "Björn", "Jörg",
    "Anja", "Uwe", "Petra",
)  # fmt: skip
_DE_LAST = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Krüger", "Hofmann", "Hartmann", "Lange",
)  # fmt: skip
_DE_STREETS = (
    "Lindenstraße", "Hauptstraße", "Schillerstraße", "Goethestraße", "Bahnhofstraße", "Gartenweg", "Am Markt",
    "Kastanienallee", "Friedrichstraße", "Bergmannstraße",
)  # fmt: skip
_DE_POSTCODES = (
    ("10115", "Berlin"),
    ("10437", "Berlin"),
    ("10997", "Berlin"),
    ("12043", "Berlin"),
    ("14467", "Potsdam"),
    ("80331", "München"),
    ("81675", "München"),
    ("20095", "Hamburg"),
    ("22765", "Hamburg"),
    ("50667", "Köln"),
    ("04109", "Leipzig"),
    ("01067", "Dresden"),
)
# Office switchboards that whole teams give as their phone; the first is the Berlin office of the shared pair.
_SWITCHBOARDS = ("+49 30 901820", "+49 89 2180 0", "+49 221 9402 0")
_DE_BANKS = ("10070000", "20040000", "37040044", "50010517", "70020270")
_FOLD_DE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


@dataclass(frozen=True)
class WebshopFacts:
    """What tests need to know about a generated webshop estate, by id (no personal values)."""

    anchor: datetime.date
    seed: int
    counts: Mapping[str, Mapping[str, int]]
    """Rows written per source and table."""
    unique_phone_customer_id: int
    """A customer whose phone number (in any format) is nobody else's, in either source."""
    split_orders_customer_id: int
    recent_order_id: int
    """The split customer's order dated within the last five years: still inside a 5-year bookkeeping hold."""
    old_order_id: int
    """The split customer's order dated over six years ago: past 5 years after any financial year end."""
    inactive_customer_id: int
    """No orders, no wishlist, last seen more than three years before the anchor."""
    active_customer_id: int
    """Last seen within the last month."""
    customers_without_orders: frozenset[int]
    shared_phone_employee_ids: tuple[int, int]
    """Two employees with the same office phone (a switchboard several share) but different e-mails."""
    long_serving_employee_ids: frozenset[int]
    """Still employed (employment_end NULL) and hired more than ten years before the anchor."""
    current_employee_ids: frozenset[int]
    former_employee_ids: frozenset[int]
    left_long_ago_employee_id: int
    """Left more than five years before the anchor."""
    left_recently_employee_id: int
    """Left less than a year before the anchor."""
    sources: tuple[str, ...] = WEBSHOP_SOURCES


def create_webshop(urls: Mapping[str, str], *, anchor: datetime.date, seed: int = 11) -> WebshopFacts:
    """Create the tables of the sources named in `urls` and fill them; return the facts about the estate.

    Each source draws from its own seeded generator, so a source's rows do not depend on which others are built.
    """
    unknown = sorted(set(urls) - set(WEBSHOP_SOURCES))
    if unknown:
        raise ValueError(f"unknown webshop source(s) {', '.join(unknown)}; expected {', '.join(WEBSHOP_SOURCES)}")
    if isinstance(anchor, datetime.datetime):
        anchor = anchor.date()
    shop = _shop_rows(anchor, random.Random(f"webshop:{seed}:shop"))
    hr = _hr_rows(anchor, random.Random(f"webshop:{seed}:hr"))
    rows = {"shop": shop, "hr": hr}
    counts = {source: _write(source, urls[source], rows[source]) for source in WEBSHOP_SOURCES if source in urls}

    split_orders = sorted(
        (o["order_date"], o["order_id"]) for o in shop["orders"] if o["customer_id"] == SPLIT_ORDERS_CUSTOMER
    )
    ordering = {o["customer_id"] for o in shop["orders"]}
    employees = hr["employees"]
    return WebshopFacts(
        anchor=anchor,
        seed=seed,
        counts=counts,
        unique_phone_customer_id=UNIQUE_PHONE_CUSTOMER,
        split_orders_customer_id=SPLIT_ORDERS_CUSTOMER,
        recent_order_id=split_orders[-1][1],
        old_order_id=split_orders[0][1],
        inactive_customer_id=INACTIVE_CUSTOMER,
        active_customer_id=ACTIVE_CUSTOMER,
        customers_without_orders=frozenset(c["customer_id"] for c in shop["customers"]) - ordering,
        shared_phone_employee_ids=SHARED_PHONE_EMPLOYEES,
        long_serving_employee_ids=frozenset(LONG_SERVING_EMPLOYEES),
        current_employee_ids=frozenset(e["employee_id"] for e in employees if e["employment_end"] is None),
        former_employee_ids=frozenset(FORMER_EMPLOYEE_IDS),
        left_long_ago_employee_id=FORMER_EMPLOYEE_IDS[0],
        left_recently_employee_id=FORMER_EMPLOYEE_IDS[-1],
    )


def read_webshop(urls: Mapping[str, str]) -> dict[str, Rows]:
    """Every row of every table of the named sources, ordered by primary key, as plain dicts."""
    out: dict[str, Rows] = {}
    for source, url in urls.items():
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                out[source] = {
                    table.name: [
                        dict(row._mapping) for row in conn.execute(sa.select(table).order_by(*table.primary_key))
                    ]
                    for table in webshop_metadata(source).sorted_tables
                }
        finally:
            engine.dispose()
    return out


def _write(source: str, url: str, rows: Rows) -> dict[str, int]:
    """Create the source's tables and insert all rows in one transaction, parents first so foreign keys hold."""
    metadata = webshop_metadata(source)
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                if rows[table.name]:
                    conn.execute(table.insert(), rows[table.name])
    finally:
        engine.dispose()
    return {table.name: len(rows[table.name]) for table in metadata.sorted_tables}


def _moment(day: datetime.date, rng: random.Random, *, earliest: int = 7, latest: int = 22) -> datetime.datetime:
    """A time of day on `day`, to the second, during waking hours."""
    start = datetime.datetime.combine(day, datetime.time(earliest))
    return start + datetime.timedelta(seconds=rng.randrange((latest - earliest) * 3600))


def _uk_phone(customer_id: int, rng: random.Random) -> str:
    """A fictional UK number, unique per customer, in one of the formats people type."""
    area, local = rng.choice(_UK_RANGES)
    local = f"{local}{100 + customer_id:03d}"
    styles = (
        f"+44 {area} {local}",
        f"0{area} {local}",
        f"0{area}{local}".replace(" ", ""),
        f"+44{area}{local}".replace(" ", ""),
        f"+44 (0){area} {local}",
        f"0044 {area} {local}",
    )
    return styles[0] if customer_id == UNIQUE_PHONE_CUSTOMER else rng.choice(styles)


def _unique_email(first: str, last: str, domain: str, taken: set[str]) -> str:
    base = f"{first}.{last}".lower().translate(_FOLD_DE).replace("'", "")
    email, n = f"{base}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{base}{n}@{domain}"
    taken.add(email)
    return email


def _shop_rows(anchor: datetime.date, rng: random.Random) -> Rows:
    start = anchor - datetime.timedelta(days=HISTORY_YEARS * 365)
    span = (anchor - start).days
    products = [{"product_id": i, "name": n, "price": p} for i, (n, p) in enumerate(_PRODUCTS, start=1)]
    price: dict[int, Decimal] = dict(enumerate((p for _, p in _PRODUCTS), start=1))

    created: dict[int, datetime.datetime] = {}
    for cid in range(1, CUSTOMERS + 1):
        days_ago = {SPLIT_ORDERS_CUSTOMER: 7 * 365 + 120, INACTIVE_CUSTOMER: 6 * 365, EARLY_CUSTOMER: span - 3}
        created[cid] = _moment(anchor - datetime.timedelta(days=days_ago.get(cid, rng.randint(31, span - 1))), rng)

    # Orders: each day drawn over the whole history, then given to a customer who already existed that day.
    eligible = [c for c in created if c not in (SPLIT_ORDERS_CUSTOMER, INACTIVE_CUSTOMER)]
    drafts: list[tuple[datetime.date, int]] = [
        (anchor - datetime.timedelta(days=7 * 365), SPLIT_ORDERS_CUSTOMER),
        (anchor - datetime.timedelta(days=200), SPLIT_ORDERS_CUSTOMER),
    ]
    while len(drafts) < ORDERS:
        day = start + datetime.timedelta(days=rng.randrange(span))
        existing = [c for c in eligible if created[c].date() <= day]
        if existing:
            drafts.append((day, rng.choice(existing)))
    drafts.sort()

    people: dict[int, Row] = {}
    for cid in created:
        first, last = rng.choice(_EN_FIRST), rng.choice(_EN_LAST)
        postcode, city = rng.choice(_UK_POSTCODES)
        people[cid] = {"first_name": first, "last_name": last, "postcode": postcode, "city": city}
        people[cid]["street"] = f"{rng.randint(1, 180)} {rng.choice(_EN_STREETS)}"

    last_activity = dict(created)
    orders: list[Row] = []
    lines: list[Row] = []
    for order_id, (day, cid) in enumerate(drafts, start=1):
        person = people[cid]
        count = rng.randint(1, MAX_LINES_PER_ORDER)
        total = Decimal("0.00")
        for line_no, product_id in enumerate(rng.sample(sorted(price), count), start=1):
            quantity = rng.choice((1, 1, 1, 2, 3))
            total += price[product_id] * quantity
            gift = rng.choice(_GIFT_MESSAGES).format(first=rng.choice(_EN_FIRST)) if rng.random() < 0.12 else None
            lines.append(
                {
                    "order_id": order_id,
                    "line_no": line_no,
                    "product_id": product_id,
                    "quantity": quantity,
                    "gift_message": gift,
                }
            )
        if rng.random() < 0.15:  # a present sent straight to someone else
            name = f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"
            postcode, city = rng.choice(_UK_POSTCODES)
            address = f"{rng.randint(1, 180)} {rng.choice(_EN_STREETS)}, {city} {postcode}"
        else:
            name = f"{person['first_name']} {person['last_name']}"
            address = f"{person['street']}, {person['city']} {person['postcode']}"
        orders.append(
            {
                "order_id": order_id,
                "customer_id": cid,
                "order_date": day.strftime(SHOP_DATE_FORMAT),
                "total": total,
                "delivery_name": name,
                "delivery_address": address,
            }
        )
        last_activity[cid] = max(last_activity[cid], _moment(day, rng))

    wishlist: list[Row] = []
    pairs: set[tuple[int, int]] = set()
    while len(wishlist) < WISHLIST:
        cid, product_id = rng.choice(eligible), rng.randint(1, PRODUCTS)
        if (cid, product_id) in pairs:
            continue
        pairs.add((cid, product_id))
        added = _moment(
            created[cid].date() + datetime.timedelta(days=rng.randrange((anchor - created[cid].date()).days)), rng
        )
        added = max(added, created[cid] + datetime.timedelta(minutes=5))
        note = rng.choice(_WISHLIST_NOTES) if rng.random() < 0.3 else None
        wishlist.append({"customer_id": cid, "product_id": product_id, "added_at": added, "note": note})
        last_activity[cid] = max(last_activity[cid], added)
    wishlist.sort(key=lambda w: (w["customer_id"], w["product_id"]))

    emails: set[str] = set()
    customers: list[Row] = []
    latest = datetime.datetime.combine(anchor, datetime.time()) - datetime.timedelta(minutes=1)
    for cid in created:
        # a visit some time after the last order or wish, but never on or after the anchor
        room = (latest - last_activity[cid]).total_seconds()
        seen = last_activity[cid] + datetime.timedelta(seconds=int(min(room, 300 * 86400) * rng.random()))
        if cid == INACTIVE_CUSTOMER:
            seen = _moment(anchor - datetime.timedelta(days=3 * 365 + 200), rng)
        elif cid == ACTIVE_CUSTOMER:
            seen = max(last_activity[cid], _moment(anchor - datetime.timedelta(days=4), rng))
        person = people[cid]
        special = cid <= EARLY_CUSTOMER
        email = None  # a few guests never gave one
        if special or rng.random() >= 0.05:
            email = _unique_email(person["first_name"], person["last_name"], rng.choice(_EMAIL_DOMAINS), emails)
        customers.append(
            {
                "customer_id": cid,
                "first_name": person["first_name"],
                "last_name": person["last_name"],
                "email": email,
                "phone": _uk_phone(cid, rng) if special or rng.random() >= 0.08 else None,
                "street": person["street"],
                "city": person["city"],
                "postcode": person["postcode"],
                "created_at": created[cid].strftime(SHOP_TIMESTAMP_FORMAT),
                "last_seen_at": seen.strftime(SHOP_TIMESTAMP_FORMAT),
                "marketing_opt_in": rng.random() < 0.4,
            }
        )
    return {"customers": customers, "products": products, "orders": orders, "order_lines": lines, "wishlist": wishlist}


def _iban(bank: str, account: int) -> str:
    """A German IBAN with correct check digits, grouped as printed on a payslip."""
    bban = f"{bank}{account:010d}"
    check = 98 - int(f"{bban}131400") % 97
    text = f"DE{check:02d}{bban}"
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _month_start(day: datetime.date, back: int = 0) -> datetime.date:
    index = day.year * 12 + day.month - 1 - back
    return datetime.date(index // 12, index % 12 + 1, 1)


def _hr_rows(anchor: datetime.date, rng: random.Random) -> Rows:
    leaving = dict(zip(FORMER_EMPLOYEE_IDS, _LEAVING_DAYS_AGO, strict=True))
    long_serving_years = dict(zip(LONG_SERVING_EMPLOYEES, (15, 12, 11), strict=True))
    emails: set[str] = set()
    employees: list[Row] = []
    slips: list[Row] = []
    first_names = rng.sample(_DE_FIRST, EMPLOYEES)
    for eid, first in enumerate(first_names, start=1):
        last = rng.choice(_DE_LAST)
        end: datetime.date | None = None
        if eid in leaving:
            end = anchor - datetime.timedelta(days=leaving[eid])
            hired = end - datetime.timedelta(days=rng.randint(2 * 365, 10 * 365))
        elif eid in long_serving_years:
            hired = anchor - datetime.timedelta(days=long_serving_years[eid] * 365 + rng.randint(10, 300))
        else:
            hired = anchor - datetime.timedelta(days=rng.randint(400, 9 * 365))
        birth = hired - datetime.timedelta(days=rng.randint(22 * 365, 50 * 365))
        if eid in SHARED_PHONE_EMPLOYEES:
            phone: str | None = _SWITCHBOARDS[0]
        elif rng.random() < 0.2:
            phone = f"+49 30 9018 2{eid:03d}"  # a direct line of one's own
        elif rng.random() < 0.1:
            phone = None
        else:
            phone = rng.choice(_SWITCHBOARDS)
        postcode, city = rng.choice(_DE_POSTCODES)
        employees.append(
            {
                "employee_id": eid,
                "first_name": first,
                "last_name": last,
                "email": _unique_email(first, last, "example.de", emails),
                "office_phone": phone,
                "home_address": f"{rng.choice(_DE_STREETS)} {rng.randint(1, 120)}, {city}",
                "postcode": postcode,
                "birth_date": birth,
                "hired_on": hired.strftime(HR_DATE_FORMAT),
                "employment_end": end,
                "geaendert_am": datetime.datetime.combine(end or hired, datetime.time(8)),
            }
        )
        last_month = _month_start(end) if end is not None else _month_start(anchor, back=1)
        months = [_month_start(last_month, back) for back in range(SLIP_MONTHS)]
        base = Decimal(rng.randrange(3200, 7800, 50))
        account = _iban(rng.choice(_DE_BANKS), rng.randrange(10**9, 10**10))
        for month in sorted(m for m in months if m >= _month_start(hired)):
            amount = base * Decimal("1.5") if month.month == 11 else base  # Weihnachtsgeld with November's pay
            slips.append({"slip_id": len(slips) + 1, "employee_id": eid, "month": month, "amount": amount})
            slips[-1]["bank_account"] = account
    return {"employees": employees, "salary_slips": slips}

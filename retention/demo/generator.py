"""The demo estate: eight years of a Danish course provider's data in three databases, made up but plausible.

The estate exists so that every retention rule has rows on both sides of its deadline and so that identity
matching has real work to do: the same person appears in several databases with e-mails in different case and
spacing, phones in different formats, a work e-mail in one place and a private one in another.

Everything is drawn from seeded generators (Faker only once, for pools of names, streets and companies), so
the same (seed, people, anchor) gives the same rows on SQLite, PostgreSQL and MariaDB. Rows are produced
lazily per person and written in batches, so memory stays flat while the estate grows to millions of rows.
"""

from __future__ import annotations

import bisect
import datetime
import random
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import sqlalchemy as sa
from faker import Faker

from retention.demo.schema import DEMO_SOURCES, demo_metadata

BATCH_ROWS = 10_000
"""Rows buffered (over all tables of a source) before they are written in one transaction."""

MAX_PEOPLE = 5_000_000
"""Enough for the benchmarks' largest estates; more is a typo, and would take hours."""

HISTORY_YEARS = 8

ENROLMENT, NEWSLETTER, ELEARNING = 1, 2, 4
_SOURCE_BIT = {"enrolment": ENROLMENT, "newsletter": NEWSLETTER, "elearning": ELEARNING}

# Which databases a person is in (bit mask) and how often: some in one only, some in two, some in all three.
_MEMBERSHIP = {1: 0.25, 2: 0.17, 4: 0.08, 3: 0.15, 5: 0.15, 6: 0.05, 7: 0.15}
_ALT_EMAIL_SHARE = 0.12  # of people in two or more databases: a work e-mail in one of them, same phone
_CHUNK = 4096  # people materialised at a time

_PRIVATE_DOMAINS = ("example.dk", "example.com", "example.net", "example.org", "mail.example.com")
_EMAIL_SEPARATORS = (".", ".", ".", "_", "-")

# (postal code, city, municipality): real pairs so that addresses and jobcentres agree.
_POSTAL = (
    ("8000", "Aarhus C", "Aarhus"),
    ("8200", "Aarhus N", "Aarhus"),
    ("8210", "Aarhus V", "Aarhus"),
    ("1620", "København V", "København"),
    ("2100", "København Ø", "København"),
    ("2200", "København N", "København"),
    ("2300", "København S", "København"),
    ("2400", "København NV", "København"),
    ("5000", "Odense C", "Odense"),
    ("5200", "Odense V", "Odense"),
    ("9000", "Aalborg", "Aalborg"),
    ("7100", "Vejle", "Vejle"),
    ("8700", "Horsens", "Horsens"),
    ("6700", "Esbjerg", "Esbjerg"),
    ("4000", "Roskilde", "Roskilde"),
    ("8900", "Randers C", "Randers"),
    ("7400", "Herning", "Herning"),
    ("3000", "Helsingør", "Helsingør"),
    ("6000", "Kolding", "Kolding"),
    ("8600", "Silkeborg", "Silkeborg"),
    ("4700", "Næstved", "Næstved"),
    ("4200", "Slagelse", "Slagelse"),
    ("7500", "Holstebro", "Holstebro"),
    ("8800", "Viborg", "Viborg"),
    ("5700", "Svendborg", "Svendborg"),
    ("2800", "Kongens Lyngby", "Lyngby-Taarbæk"),
    ("3400", "Hillerød", "Hillerød"),
    ("6400", "Sønderborg", "Sønderborg"),
    ("9800", "Hjørring", "Hjørring"),
    ("7700", "Thisted", "Thisted"),
    ("4800", "Nykøbing F", "Guldborgsund"),
    ("2630", "Taastrup", "Høje-Taastrup"),
    ("2750", "Ballerup", "Ballerup"),
    ("7000", "Fredericia", "Fredericia"),
    ("8500", "Grenaa", "Norddjurs"),
)

# (code, title, price, length of the course in days)
_COURSES = (
    ("PT-GRUND", "Personlig træner", Decimal("24995.00"), 120),
    ("PT-ADV", "Personlig træner, videregående", Decimal("14995.00"), 60),
    ("KOST-1", "Kostvejleder", Decimal("12995.00"), 90),
    ("YOGA-200", "Yogalærer 200 timer", Decimal("19995.00"), 180),
    ("FIT-INST", "Fitnessinstruktør", Decimal("8995.00"), 30),
    ("HOLD-INST", "Holdinstruktør", Decimal("6495.00"), 21),
    ("MASS-1", "Sportsmassør", Decimal("16995.00"), 75),
    ("MENTAL", "Mentaltræner", Decimal("14995.00"), 45),
    ("SPIN", "Spinninginstruktør", Decimal("2495.00"), 2),
    ("HLR", "Førstehjælp og hjertestarter", Decimal("995.00"), 1),
)
_CONSENT_TEXT = "Ja tak til nyhedsbrev og tilbud fra At Work"
_EXAM_FEE = Decimal("1495.00")
_CENT = Decimal("0.01")

_SPECIAL_NEEDS = (
    "Ordblind; har brug for oplæsning ved eksamen",
    "Kørestolsbruger; behøver niveaufri adgang",
    "Diabetes type 1; skal kunne holde pauser og spise undervejs",
    "Høreapparat; sidder helst forrest",
    "Gravid; undgår løft over 10 kg",
    "ADHD; ekstra tid til skriftlig prøve",
    "Fødevareallergi (nødder); gælder forplejning",
    "Tidligere knæskade; tilpassede øvelser",
)
_PARTNERS = (
    ("Europe Active", "navn, e-mail, eksamensresultat"),
    ("VIA Institute", "navn, fødselsdato, kursusforløb"),
    ("Materials shipper", "navn, adresse, telefon"),
)
_CAMPAIGN_MONTHS = (
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
)
_INTERESTS = (
    "personlig træning",
    "kost og ernæring",
    "yoga",
    "holdtræning",
    "massage",
    "mental træning",
    "løb",
    "styrketræning",
    "førstehjælp",
    "online kurser",
)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64; Trident/7.0; rv:11.0) like Gecko",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0 Mobile Safari/537.36",
)
_MODULES = (
    "Modul 1: Anatomi",
    "Modul 2: Fysiologi",
    "Modul 3: Træningslære",
    "Modul 4: Kost og ernæring",
    "Modul 5: Coaching",
    "Modul 6: Praktik",
)
_EXAMS = (
    "Anatomi og fysiologi",
    "Træningslære",
    "Kost og ernæring",
    "Førstehjælp",
    "Afsluttende prøve",
)
_FORUM_TITLES = (
    "Spørgsmål om modul 3",
    "Tips til eksamen i anatomi?",
    "Nogen der vil læse sammen?",
    "Problemer med at uploade video",
    "Kostplan til en klient",
    "Hvordan kommer man i gang som PT?",
    "Praktikplads i Aarhus",
    "Erfaringer med yogauddannelsen",
    "Hjælp til træningsprogram",
    "Ledig plads på weekendholdet",
    "Bøger til kostvejlederuddannelsen sælges",
    "Samkørsel til kursusdagen",
)
_FORUM_OPENERS = (
    "Hej alle sammen!",
    "Hej med jer.",
    "Godmorgen :)",
    "Hej, jeg er ny herinde.",
    "Tak for en god kursusdag i weekenden.",
    "Kort spørgsmål:",
)
_FORUM_LINES = (
    "Jeg er lige startet på uddannelsen og har et spørgsmål til opgaven.",
    "Er der nogen der har erfaring med at lave træningsprogrammer til ældre?",
    "Jeg synes modul 4 var svært, især afsnittet om energisystemer.",
    "Vi kunne lave en læsegruppe inden eksamen.",
    "Underviseren nævnte en artikel om restitution, er der nogen der har linket?",
    "Min video vil ikke uploade, den står bare og loader.",
    "Hvor mange timer bruger I på praktikken om ugen?",
    "Jeg har en klient med dårlig ryg, hvilke øvelser vil I anbefale?",
    "Tusind tak for svarene, det hjalp meget.",
    "Det er super at vi kan hjælpe hinanden herinde.",
)
_CONTACT_LINES = (
    "Skriv til mig på {email}.",
    "Ring gerne på {phone} efter kl. 17.",
    "Du kan fange mig på {email} eller {phone}.",
    "Send en sms på {phone}, så finder vi ud af det.",
    "Min mail er {email} hvis du vil have noterne.",
    "Kontakt {email} / tlf. {phone}",
)
_CAPTIONS = (
    "Mig til eksamen",
    "Holdbillede fra weekendkurset",
    "Øvelse: dødløft med korrekt teknik",
    "Min første time som instruktør",
    "Praktik i fitnesscentret",
    "Yoga på stranden",
)
_COMMUNITIES = (
    "PT-netværket",
    "Kostvejledere i Danmark",
    "Yoga-fællesskabet",
    "Løbeklubben At Work",
    "Alumni At Work",
)
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "ü": "u", "ö": "oe", "ä": "ae", "é": "e"})


def generate_demo_estate(
    urls: Mapping[str, str],
    *,
    people: int = 2000,
    seed: int = 7,
    anchor: datetime.date | None = None,
    replace: bool = False,
    progress: Callable[[str, str, int], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Create and fill the demo databases named in `urls`; return the rows written per source and table.

    `anchor` is the estate's "today": all history lies in the eight years before it. Existing demo tables that
    hold rows are an error unless `replace` is set, so a demo is never silently doubled or overwritten.
    """
    unknown = sorted(set(urls) - set(DEMO_SOURCES))
    if unknown:
        raise ValueError(f"unknown demo source(s) {', '.join(unknown)}; expected some of {', '.join(DEMO_SOURCES)}")
    if not 1 <= people <= MAX_PEOPLE:
        raise ValueError(f"--people {people}: the demo estate holds from 1 to {MAX_PEOPLE:,} people")
    if isinstance(anchor, datetime.datetime):
        anchor = anchor.date()
    anchor = anchor or datetime.date.today()

    engines = {source: sa.create_engine(urls[source]) for source in DEMO_SOURCES if source in urls}
    try:
        if not replace:
            for source, engine in engines.items():
                _refuse_filled(source, engine)
        for source, engine in engines.items():
            metadata = demo_metadata(source)
            if replace:
                metadata.drop_all(engine)
            metadata.create_all(engine)
        cal = _Calendar(anchor)
        pools = _Pools.draw(seed)
        crowd = _People(people, seed, cal, pools)
        builders = {"enrolment": _enrolment_rows, "newsletter": _newsletter_rows, "elearning": _elearning_rows}
        counts: dict[str, dict[str, int]] = {}
        for source, engine in engines.items():
            rng = random.Random(f"demo-estate:{seed}:{source}")
            rows = builders[source](crowd, cal, pools, rng)
            counts[source] = _write(source, engine, rows, progress)
        return counts
    finally:
        for engine in engines.values():
            engine.dispose()


def _refuse_filled(source: str, engine: sa.Engine) -> None:
    """Refuse to add a second estate on top of a filled one: the keys would clash or the data double."""
    existing = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in demo_metadata(source).sorted_tables:
            if table.name in existing and conn.execute(sa.select(1).select_from(table).limit(1)).first():
                raise ValueError(
                    f"the {source} database already holds rows (table {table.name}); "
                    "pass --replace (replace=True) to drop and regenerate the demo estate"
                )


CHANGED_FROM = {
    "customers": ("created_at", "last_contact_at"),
    "subscribers": ("consent_at", "unsubscribed_at"),
    "accounts": ("created_at", "last_login_at"),
}
"""The people tables' `updated_at`, as their applications would have set it: the row's latest change."""


def _write(
    source: str,
    engine: sa.Engine,
    rows: Iterator[tuple[str, dict[str, object]]],
    progress: Callable[[str, str, int], None] | None,
) -> dict[str, int]:
    """Write rows in batches, one transaction each, parent tables first so foreign keys always hold."""
    tables = demo_metadata(source).sorted_tables
    counts = {table.name: 0 for table in tables}
    buffers: dict[str, list[dict[str, object]]] = {table.name: [] for table in tables}
    buffered = 0

    def flush() -> None:
        written = [table for table in tables if buffers[table.name]]
        with engine.begin() as conn:
            for table in written:
                batch = buffers[table.name]
                conn.execute(table.insert(), batch)
                counts[table.name] += len(batch)
                batch.clear()
        if progress is not None:
            for table in written:
                progress(source, table.name, counts[table.name])

    for name, row in rows:
        if name in CHANGED_FROM:
            row["updated_at"] = max(t for c in CHANGED_FROM[name] if isinstance(t := row[c], datetime.datetime))
        buffers[name].append(row)
        buffered += 1
        if buffered >= BATCH_ROWS:
            flush()
            buffered = 0
    if buffered:
        flush()
    return counts


class _Calendar:
    """Day numbers since the start of the history, so that people's dates are small ints, not objects."""

    def __init__(self, anchor: datetime.date) -> None:
        try:
            start = anchor.replace(year=anchor.year - HISTORY_YEARS)
        except ValueError:  # 29 February
            start = anchor.replace(year=anchor.year - HISTORY_YEARS, day=28)
        self.anchor = anchor
        self.start = start
        self.days = (anchor - start).days
        self.last = self.days - 1  # the day before the anchor: nothing happens on or after the anchor
        self.end_dt = datetime.datetime.combine(anchor, datetime.time())
        future = self.days + 400  # course dates may lie after the anchor
        self.dates = [start + datetime.timedelta(days=d) for d in range(future)]
        self.midnights = [datetime.datetime.combine(d, datetime.time()) for d in self.dates]
        self.weekday = [d.weekday() for d in self.dates]

    def index(self, day: datetime.date) -> int:
        return (day - self.start).days

    def business(self, day: int, rng: random.Random, floor: int = 0) -> datetime.datetime:
        """An office-hours timestamp on a weekday, moved back from a weekend but not before `floor`."""
        weekday = self.weekday[day]
        if weekday >= 5 and day - (weekday - 4) >= floor:
            day -= weekday - 4
        return self.midnights[day] + datetime.timedelta(seconds=28800 + int(rng.random() * 32400))

    def anytime(self, day: int, rng: random.Random) -> datetime.datetime:
        """A private-life timestamp (06:00-24:00), clear of the hour that summer time skips or repeats."""
        return self.midnights[day] + datetime.timedelta(seconds=21600 + int(rng.random() * 64800))


def _fold(text: str) -> str:
    """A name as it would appear in an e-mail address: lower-case a-z only."""
    text = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    return "".join(ch for ch in text if "a" <= ch <= "z")


def _dedupe(values: list[str], key: Callable[[str], str], taken: set[str] | None = None) -> list[str]:
    """Distinct values in draw order, distinct also in folded form so that e-mail addresses stay unique."""
    seen = taken if taken is not None else set()
    out = []
    for value in values:
        folded = key(value)
        if folded and folded not in seen:
            seen.add(folded)
            out.append(value)
    return out


@dataclass(frozen=True)
class _Pools:
    """Everything drawn from Faker, drawn once: Faker is far too slow to call per row."""

    first_names: list[str]
    female_count: int
    last_names: list[str]
    streets: list[str]
    companies: list[str]
    company_slugs: list[str]
    sentences: list[str]
    ips: list[str]

    @classmethod
    def draw(cls, seed: int) -> _Pools:
        fake = Faker("da_DK")
        fake.seed_instance(seed)
        taken: set[str] = set()
        female = _dedupe([fake.first_name_female() for _ in range(2000)], _fold, taken)
        male = _dedupe([fake.first_name_male() for _ in range(2000)], _fold, taken)
        last = _dedupe([fake.last_name() for _ in range(2000)], _fold)
        streets = _dedupe([fake.street_name() for _ in range(3000)], str.lower)
        company_names = [fake.company() for _ in range(2000)]
        slug = {name: _company_slug(name) for name in company_names}
        companies = _dedupe(company_names, slug.__getitem__, {"mail"})
        sentences = [fake.sentence(nb_words=8) for _ in range(1500)]
        ips = [fake.ipv4_public() for _ in range(3000)]
        return cls(
            first_names=female + male,
            female_count=len(female),
            last_names=last,
            streets=streets,
            companies=companies,
            company_slugs=[slug[c] for c in companies],
            sentences=sentences,
            ips=ips,
        )


def _company_slug(name: str) -> str:
    words = [_fold(w) for w in name.replace("&", " ").split()]
    return "-".join(w for w in words if w and w not in {"aps", "as", "is", "og"})


@dataclass(slots=True)
class _Person:
    """One person as the sources see them; built per chunk so that only a chunk of people is ever in memory."""

    pid: int
    first: str
    middle: str | None
    last: str
    email: str
    alt_email: str | None
    alt_source: int
    phone: str
    employer: str | None
    mask: int
    start: int
    end: int
    primary: int
    customer_id: int
    subscriber_id: int
    account_id: int

    def name(self, rng: random.Random) -> str:
        if self.middle and rng.random() < 0.7:
            return f"{self.first} {self.middle} {self.last}"
        return f"{self.first} {self.last}"

    def email_in(self, source: int) -> str:
        return self.alt_email if self.alt_source == source and self.alt_email else self.email

    def window(self, source: int, rng: random.Random) -> tuple[int, int]:
        """The days a person was active in one source; the primary source holds their last interaction."""
        if self.primary == source:
            return self.start, self.end
        low = self.start + int(rng.random() * (self.end - self.start + 1))
        return low, low + int(rng.random() * (self.end - low + 1))


class _People:
    """The crowd as per-person arrays of small ints: identity must agree across sources, rows need not."""

    def __init__(self, count: int, seed: int, cal: _Calendar, pools: _Pools) -> None:
        self.count = count
        self.pools = pools
        self.first_ascii = [_fold(n) for n in pools.first_names]
        self.last_ascii = [_fold(n) for n in pools.last_names]
        rng = np.random.default_rng(seed)
        n_first, n_last = len(pools.first_names), len(pools.last_names)

        female = rng.random(count) < 0.55  # course participants lean female
        n_female = pools.female_count
        self.first = np.where(
            female, rng.integers(0, n_female, count), n_female + rng.integers(0, n_first - n_female, count)
        ).astype(np.int32)
        self.last = rng.integers(0, n_last, count, dtype=np.int32)
        middle = rng.integers(0, n_last, count, dtype=np.int32)
        self.middle = np.where((rng.random(count) < 0.35) & (middle != self.last), middle, -1).astype(np.int32)

        self.separator = rng.integers(0, len(_EMAIL_SEPARATORS), count, dtype=np.int8)
        self.domain = rng.integers(0, len(_PRIVATE_DOMAINS), count, dtype=np.int8)
        sep_kind = np.array([[".", "_", "-"].index(s) for s in _EMAIL_SEPARATORS])[self.separator]
        name_key = sep_kind.astype(np.int64) * n_first + self.first
        self.email_rank = _ranks((name_key * n_last + self.last) * len(_PRIVATE_DOMAINS) + self.domain)

        masks = np.array(list(_MEMBERSHIP), dtype=np.int8)
        weights = np.array(list(_MEMBERSHIP.values()))
        self.mask = rng.choice(masks, size=count, p=weights / weights.sum())
        in_several = np.array([bin(m).count("1") >= 2 for m in range(8)])[self.mask]
        alt = in_several & (rng.random(count) < _ALT_EMAIL_SHARE)
        highest = np.where(self.mask & ELEARNING, ELEARNING, np.where(self.mask & NEWSLETTER, NEWSLETTER, ENROLMENT))
        self.alt_source = np.where(alt, highest, 0).astype(np.int8)

        employer = rng.integers(0, len(pools.companies), count, dtype=np.int32)
        self.employer = np.where(alt | (rng.random(count) < 0.6), employer, -1).astype(np.int32)
        self.alt_rank = _ranks((self.first.astype(np.int64) * n_last + self.last) * len(pools.companies) + employer)

        self.primary = _pick_bit(self.mask, rng.random(count))
        self.start = rng.integers(0, cal.days, count, dtype=np.int32)
        end = self.start + rng.exponential(600.0, count).astype(np.int32)
        recent = cal.last - rng.integers(0, 45, count, dtype=np.int32)
        self.end = np.maximum(self.start, np.where(end > cal.last, recent, end)).astype(np.int32)

        self.customer_id = np.cumsum((self.mask & ENROLMENT) > 0, dtype=np.int64)
        self.subscriber_id = np.cumsum((self.mask & NEWSLETTER) > 0, dtype=np.int64)
        self.account_id = np.cumsum((self.mask & ELEARNING) > 0, dtype=np.int64)

        # Distinct Danish mobile-looking numbers without remembering them: an affine bijection on 8 digits.
        self._phone_step = int(rng.integers(10_000_000, 70_000_000)) | 1
        while self._phone_step % 5 == 0:
            self._phone_step += 2
        self._phone_offset = int(rng.integers(0, 80_000_000))

    def phone(self, pid: int) -> str:
        return str(20_000_000 + (self._phone_step * pid + self._phone_offset) % 80_000_000)

    def email(self, pid: int) -> str:
        first, last = self.first_ascii[self.first[pid]], self.last_ascii[self.last[pid]]
        rank = int(self.email_rank[pid])
        suffix = str(rank + 1) if rank else ""
        return f"{first}{_EMAIL_SEPARATORS[self.separator[pid]]}{last}{suffix}@{_PRIVATE_DOMAINS[self.domain[pid]]}"

    def members(self, source: int) -> Iterator[_Person]:
        """The people in one source, in a fixed order, a chunk at a time."""
        pools = self.pools
        for low in range(0, self.count, _CHUNK):
            part = slice(low, min(low + _CHUNK, self.count))
            masks = self.mask[part].tolist()
            columns = zip(
                range(part.start, part.stop),
                masks,
                self.first[part].tolist(),
                self.middle[part].tolist(),
                self.last[part].tolist(),
                self.alt_source[part].tolist(),
                self.alt_rank[part].tolist(),
                self.employer[part].tolist(),
                self.start[part].tolist(),
                self.end[part].tolist(),
                self.primary[part].tolist(),
                self.customer_id[part].tolist(),
                self.subscriber_id[part].tolist(),
                self.account_id[part].tolist(),
                strict=True,
            )
            for pid, mask, first, middle, last, alt_source, alt_rank, employer, *rest in columns:
                if not mask & source:
                    continue
                alt_email = None
                if alt_source:
                    suffix = str(alt_rank + 1) if alt_rank else ""
                    local = f"{self.first_ascii[first]}.{self.last_ascii[last]}{suffix}"
                    alt_email = f"{local}@{pools.company_slugs[employer]}.example.dk"
                start, end, primary, customer_id, subscriber_id, account_id = rest
                yield _Person(
                    pid=pid,
                    first=pools.first_names[first],
                    middle=pools.last_names[middle] if middle >= 0 else None,
                    last=pools.last_names[last],
                    email=self.email(pid),
                    alt_email=alt_email,
                    alt_source=alt_source,
                    phone=self.phone(pid),
                    employer=pools.companies[employer] if employer >= 0 else None,
                    mask=mask,
                    start=start,
                    end=end,
                    primary=primary,
                    customer_id=customer_id,
                    subscriber_id=subscriber_id,
                    account_id=account_id,
                )


def _ranks(keys: np.ndarray) -> np.ndarray:
    """For each element, how many equal keys came before it: the number that keeps an e-mail unique."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    position = np.arange(len(keys))
    group_start = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], position, 0))
    ranks = np.empty(len(keys), dtype=np.int32)
    ranks[order] = position - group_start
    return ranks


def _pick_bit(masks: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One set bit of each mask, chosen uniformly by `u`: the source that holds a person's last interaction."""
    counts = (masks & 1 > 0).astype(np.int8) + (masks & 2 > 0) + (masks & 4 > 0)
    k = (u * counts).astype(np.int8)
    out = np.zeros(len(masks), dtype=np.int8)
    for bit in (1, 2, 4):
        has = (masks & bit) > 0
        out = np.where(has & (k == 0) & (out == 0), bit, out)
        k = np.where(has, k - 1, k)
    return out


def _messy_email(email: str, rng: random.Random) -> str:
    """An e-mail as people type it: sometimes capitalised, shouted, or with stray spaces."""
    r = rng.random()
    if r < 0.55:
        return email
    local, domain = email.split("@")
    proper = f"{local.title()}@{domain[0].upper()}{domain[1:]}"
    if r < 0.78:
        return proper
    if r < 0.92:
        return f" {proper if rng.random() < 0.5 else email} "
    return email.upper()


def _messy_phone(digits: str, rng: random.Random) -> str:
    """A Danish number in one of the formats that forms and staff actually produce."""
    k = int(rng.random() * 5)
    if k == 0:
        return f"+45 {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
    if k == 1:
        return digits
    if k == 2:
        return f"0045 {digits[:4]} {digits[4:]}"
    if k == 3:
        return f"{digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
    return f"+45{digits}"


def _clear_of_dst(moment: datetime.datetime) -> datetime.datetime:
    """Out of 02:00-03:00, the local hour that summer time skips in March and repeats in October."""
    return moment + datetime.timedelta(hours=1) if moment.hour == 2 else moment


def _between(low: int, high: int, rng: random.Random) -> int:
    return low + int(rng.random() * (high - low + 1))


def _enrolment_rows(
    crowd: _People, cal: _Calendar, pools: _Pools, rng: random.Random
) -> Iterator[tuple[str, dict[str, object]]]:
    """Customers with enrolments, their invoices (vouchers), payments and what was shared with partners."""
    enrolment_id = invoice_id = payment_id = share_id = 0
    last = cal.last
    for person in crowd.members(ENROLMENT):
        low, high = person.window(ENROLMENT, rng)
        postal_code, city, municipality = rng.choice(_POSTAL)
        street = f"{rng.choice(pools.streets)} {_between(1, 160, rng)}"
        if rng.random() < 0.3:
            street += f", {_between(1, 5, rng)}. {rng.choice(('tv', 'th', 'mf'))}"
        full_name = person.name(rng)
        linked_by_phone = person.alt_source != 0
        n = 1 if low == high else 1 + (rng.random() < 0.4) + (rng.random() < 0.15) + (rng.random() < 0.05)
        days = [low] if n == 1 else sorted([low, high, *(_between(low, high, rng) for _ in range(n - 2))])
        enrolled = [cal.business(day, rng, floor=low) for day in days]
        created = enrolled[0] - datetime.timedelta(minutes=_between(1, 30, rng))
        last_contact = max(enrolled[-1], cal.business(high, rng, floor=low))
        yield (
            "customers",
            {
                "customer_id": person.customer_id,
                "customer_number": f"C{person.customer_id:06d}",
                "full_name": full_name,
                "email": _messy_email(person.email_in(ENROLMENT), rng)
                if linked_by_phone or rng.random() < 0.97
                else None,
                "phone": _messy_phone(person.phone, rng) if linked_by_phone or rng.random() < 0.92 else None,
                "street": street,
                "postal_code": postal_code,
                "city": city,
                "birth_date": cal.anchor - datetime.timedelta(days=_between(18 * 365, 67 * 365, rng))
                if rng.random() < 0.9
                else None,
                "employer": person.employer,
                "created_at": max(created, cal.midnights[0]),
                "last_contact_at": None if rng.random() < 0.05 else last_contact,
            },
        )
        address = f"{street}, {postal_code} {city}"
        for day, enrolled_at in zip(days, enrolled, strict=True):
            enrolment_id += 1
            code, _title, price, length = rng.choice(_COURSES)
            course_start = day + _between(10, 120, rng)
            jobcenter = f"Jobcenter {municipality}" if rng.random() < 0.18 else None
            yield (
                "enrolments",
                {
                    "enrolment_id": enrolment_id,
                    "customer_id": person.customer_id,
                    "course_code": code,
                    "course_start": cal.dates[course_start],
                    "course_end": cal.dates[course_start + max(0, length - 1 + _between(-3, 3, rng))],
                    "enrolled_at": enrolled_at,
                    "channel": "jobcenter" if jobcenter else "direct",
                    "jobcenter": jobcenter,
                    "special_needs": rng.choice(_SPECIAL_NEEDS) if rng.random() < 0.1 else None,
                    "price": price,
                },
            )
            if jobcenter:
                billing = (jobcenter, f"{municipality} Kommune, att. {full_name}, {postal_code} {city}")
            elif person.employer and rng.random() < 0.25:
                work_code, work_city, _ = rng.choice(_POSTAL)
                work_street = f"{rng.choice(pools.streets)} {_between(1, 90, rng)}"
                billing = (person.employer, f"att. {full_name}, {work_street}, {work_code} {work_city}")
            else:
                billing = (full_name, address)
            charges = [] if rng.random() < 0.04 else [price]
            if charges and rng.random() < 0.05:
                charges.append(_EXAM_FEE)
            for amount in charges:
                invoice_id += 1
                invoice_day = _invoice_day(day, cal, rng)
                yield (
                    "invoices",
                    {
                        "invoice_id": invoice_id,
                        "enrolment_id": enrolment_id,
                        "invoice_number": f"{cal.dates[invoice_day].year}-{invoice_id:06d}",
                        "invoice_date": cal.dates[invoice_day],
                        "amount": amount,
                        "billing_name": billing[0],
                        "billing_address": billing[1],
                    },
                )
                paid_day = invoice_day + _between(1, 40, rng)
                if rng.random() >= 0.9 or paid_day > last:
                    continue  # open invoice
                account = f"{_between(1000, 9899, rng)} {_between(0, 9_999_999_999, rng):010d}"
                bank_account = None if rng.random() < 0.5 else account
                parts = [amount]
                if rng.random() < 0.06:
                    half = (amount / 2).quantize(_CENT)
                    parts = [half, amount - half]
                for i, part in enumerate(parts):
                    payment_id += 1
                    yield (
                        "payments",
                        {
                            "payment_id": payment_id,
                            "invoice_id": invoice_id,
                            "paid_at": cal.business(min(paid_day + 30 * i, last), rng, floor=paid_day),
                            "amount": part,
                            "bank_account": bank_account,
                        },
                    )
            if rng.random() < 0.18:
                share_id += 1
                partner, data_shared = rng.choice(_PARTNERS)
                yield (
                    "partner_shares",
                    {
                        "share_id": share_id,
                        "enrolment_id": enrolment_id,
                        "partner": partner,
                        "shared_at": cal.business(min(day + _between(1, 20, rng), last), rng, floor=day),
                        "data_shared": data_shared,
                    },
                )


def _invoice_day(enrolled_day: int, cal: _Calendar, rng: random.Random) -> int:
    """Mostly a few days after the enrolment; some exactly on 31 December or 1 January, the year's edges."""
    r = rng.random()
    year = cal.dates[enrolled_day].year
    if r < 0.03:
        edge = cal.index(datetime.date(year, 12, 31))
    elif r < 0.06:
        edge = cal.index(datetime.date(year + 1, 1, 1))
    else:
        edge = -1
    if enrolled_day <= edge <= cal.last:
        return edge
    return min(enrolled_day + _between(0, 10, rng), cal.last)


def _campaigns(cal: _Calendar) -> list[tuple[int, datetime.datetime, str]]:
    """The newsletter's history: a monthly letter on the first Tuesday, season news mid-quarter."""
    out = []
    for day in range(cal.days):
        date = cal.dates[day]
        if date.day <= 7 and date.weekday() == 1:
            name = f"Nyhedsbrev {_CAMPAIGN_MONTHS[date.month - 1]} {date.year}"
            out.append((day, cal.midnights[day] + datetime.timedelta(hours=9, minutes=30), name))
        elif date.month in (2, 5, 8, 11) and 15 <= date.day <= 21 and date.weekday() == 3:
            name = f"Nye hold {_CAMPAIGN_MONTHS[date.month - 1]} {date.year}"
            out.append((day, cal.midnights[day] + datetime.timedelta(hours=15), name))
    return out


def _newsletter_rows(
    crowd: _People, cal: _Calendar, pools: _Pools, rng: random.Random
) -> Iterator[tuple[str, dict[str, object]]]:
    """Subscribers with consent, sends (not an interaction), opens and clicks, and interest profiles."""
    campaigns = _campaigns(cal)
    campaign_days = [c[0] for c in campaigns]
    send_id = event_id = profile_id = 0
    for person in crowd.members(NEWSLETTER):
        low, high = person.window(NEWSLETTER, rng)
        consent_at = cal.anytime(low, rng)
        unsubscribed_at = None
        if rng.random() < 0.28:
            unsubscribed_at = cal.anytime(min(high + _between(0, 150, rng), cal.last), rng)
            if unsubscribed_at <= consent_at:
                unsubscribed_at = _clear_of_dst(consent_at + datetime.timedelta(minutes=_between(5, 300, rng)))
        name = None
        r = rng.random()
        if r < 0.65:
            name = person.name(rng)
        elif r < 0.75:
            name = person.first
        linked_by_phone = person.alt_source != 0
        home_ip, device = rng.choice(pools.ips), rng.choice(_USER_AGENTS)
        yield (
            "subscribers",
            {
                "subscriber_id": person.subscriber_id,
                "email": _messy_email(person.email_in(NEWSLETTER), rng),
                "full_name": name,
                "phone": _messy_phone(person.phone, rng) if linked_by_phone or rng.random() < 0.4 else None,
                "consent_at": consent_at,
                "consent_text": f"{_CONSENT_TEXT} (samtykketekst v{1 + low * 4 // cal.days})",
                "unsubscribed_at": unsubscribed_at,
                "signup_ip": home_ip if rng.random() < 0.8 else None,
            },
        )
        stop = unsubscribed_at or cal.end_dt
        for index in range(bisect.bisect_right(campaign_days, low), len(campaigns)):
            day, sent_at, campaign = campaigns[index]
            if sent_at >= stop:
                break
            if rng.random() >= 0.3:
                continue
            send_id += 1
            yield (
                "sends",
                {"send_id": send_id, "subscriber_id": person.subscriber_id, "campaign": campaign, "sent_at": sent_at},
            )
            if day > high or rng.random() >= 0.4:
                continue
            occurred = sent_at + datetime.timedelta(seconds=_between(60, 3 * 86400, rng))
            for kind in ("open", "click"):
                occurred = _clear_of_dst(occurred)
                if occurred >= cal.end_dt:
                    break
                event_id += 1
                yield (
                    "events",
                    {
                        "event_id": event_id,
                        "subscriber_id": person.subscriber_id,
                        "kind": kind,
                        "occurred_at": occurred,
                        "ip": home_ip if rng.random() < 0.8 else rng.choice(pools.ips),
                        "user_agent": device if rng.random() < 0.85 else rng.choice(_USER_AGENTS),
                    },
                )
                if rng.random() >= 0.3:
                    break
                occurred += datetime.timedelta(seconds=_between(5, 600, rng))
        if rng.random() < 0.6:
            profile_id += 1
            yield (
                "interest_profiles",
                {
                    "profile_id": profile_id,
                    "subscriber_id": person.subscriber_id,
                    "interests": ", ".join(rng.sample(_INTERESTS, _between(1, 4, rng))),
                    "score": _between(0, 100, rng),
                    "updated_at": cal.anytime(_between(low, high, rng), rng),
                },
            )


def _elearning_rows(
    crowd: _People, cal: _Calendar, pools: _Pools, rng: random.Random
) -> Iterator[tuple[str, dict[str, object]]]:
    """Accounts with progress, exams, forum posts and comments, uploads and community memberships."""
    progress_id = result_id = comment_id = upload_id = membership_id = 0
    post_days: list[int] = []  # each post's day and time so far, so that comments come after their post
    post_times: list[datetime.datetime] = []
    for person in crowd.members(ELEARNING):
        low, high = person.window(ELEARNING, rng)
        never_logged_in = rng.random() < 0.08
        created_at = cal.anytime(low, rng)
        last_login_at = None
        if not never_logged_in:
            last_login_at = cal.anytime(high, rng)
            if last_login_at <= created_at:
                last_login_at = created_at + datetime.timedelta(minutes=_between(1, 90, rng))
        account_id = person.account_id
        username = f"{crowd.first_ascii[crowd.first[person.pid]]}{crowd.last_ascii[crowd.last[person.pid]][0]}"
        username += str(account_id)
        linked_by_phone = person.alt_source != 0
        linked_customer = person.mask & ENROLMENT and rng.random() < 0.7
        yield (
            "accounts",
            {
                "account_id": account_id,
                "login_email": _messy_email(person.email_in(ELEARNING), rng),
                "username": username,
                "full_name": person.name(rng) if rng.random() < 0.9 else None,
                "phone": _messy_phone(person.phone, rng) if linked_by_phone or rng.random() < 0.5 else None,
                "customer_number": f"C{person.customer_id:06d}" if linked_customer else None,
                "password_hash": "$2b$12$" + "".join(rng.choices(_BCRYPT_ALPHABET, k=53)),
                "last_login_at": last_login_at,
                "last_login_ip": rng.choice(pools.ips) if last_login_at else None,
                "created_at": created_at,
            },
        )
        if never_logged_in:
            continue
        for _ in range(int(rng.random() * 7)):
            progress_id += 1
            yield (
                "progress",
                {
                    "progress_id": progress_id,
                    "account_id": account_id,
                    "course_code": rng.choice(_COURSES)[0],
                    "module": rng.choice(_MODULES),
                    "percent": min(100, int(rng.random() * 130)),
                    "updated_at": cal.anytime(_between(low, high, rng), rng),
                },
            )
        for _ in range(int(rng.random() * 2.6)):
            result_id += 1
            score = _between(20, 100, rng)
            yield (
                "exam_results",
                {
                    "result_id": result_id,
                    "account_id": account_id,
                    "exam": rng.choice(_EXAMS),
                    "score": score,
                    "passed": score >= 60,
                    "taken_at": cal.business(_between(low, high, rng), rng, floor=low),
                },
            )
        if rng.random() < 0.3:
            for _ in range(_between(1, 3, rng)):
                day = _between(low, high, rng)
                post_days.append(day)
                post_times.append(cal.anytime(day, rng))
                yield (
                    "forum_posts",
                    {
                        "post_id": len(post_days),
                        "account_id": account_id,
                        "title": rng.choice(_FORUM_TITLES),
                        "body": _forum_text(person, crowd, pools, rng, opener=True),
                        "posted_at": post_times[-1],
                    },
                )
        if post_days and rng.random() < 0.35:
            for _ in range(_between(1, 4, rng)):
                post_id = _between(1, len(post_days), rng)
                post_day, post_at = post_days[post_id - 1], post_times[post_id - 1]
                if post_day > high:
                    continue
                posted_at = cal.anytime(_between(max(low, post_day), high, rng), rng)
                if posted_at <= post_at:
                    posted_at = _clear_of_dst(post_at + datetime.timedelta(minutes=_between(3, 180, rng)))
                body = _forum_text(person, crowd, pools, rng, opener=False)
                if posted_at >= cal.end_dt:
                    continue
                comment_id += 1
                yield (
                    "forum_comments",
                    {
                        "comment_id": comment_id,
                        "post_id": post_id,
                        "account_id": account_id,
                        "body": body,
                        "posted_at": posted_at,
                    },
                )
        if rng.random() < 0.2:
            for _ in range(_between(1, 3, rng)):
                upload_id += 1
                kind = "photo" if rng.random() < 0.75 else "video"
                number = _between(1, 9999, rng)
                yield (
                    "uploads",
                    {
                        "upload_id": upload_id,
                        "account_id": account_id,
                        "kind": kind,
                        "file_name": f"IMG_{number:04d}.jpg" if kind == "photo" else f"VID_{number:04d}.mp4",
                        "caption": rng.choice(_CAPTIONS) if rng.random() < 0.6 else None,
                        "uploaded_at": cal.anytime(_between(low, high, rng), rng),
                    },
                )
        if rng.random() < 0.3:
            for community in rng.sample(_COMMUNITIES, _between(1, 2, rng)):
                membership_id += 1
                joined = _between(low, high, rng)
                withdrawn = cal.anytime(_between(joined, cal.last, rng), rng) if rng.random() < 0.2 else None
                joined_at = cal.anytime(joined, rng)
                if withdrawn and withdrawn <= joined_at:
                    withdrawn = joined_at + datetime.timedelta(hours=1)
                yield (
                    "community_memberships",
                    {
                        "membership_id": membership_id,
                        "account_id": account_id,
                        "community": community,
                        "profile_url": f"https://community.example.dk/u/{username}" if rng.random() < 0.8 else None,
                        "joined_at": joined_at,
                        "withdrawn_at": withdrawn,
                    },
                )


def _forum_text(person: _Person, crowd: _People, pools: _Pools, rng: random.Random, *, opener: bool) -> str:
    """Danish-ish chatter; about one in seven texts gives an e-mail or phone, often the writer's own."""
    lines = [rng.choice(_FORUM_OPENERS)] if opener else []
    lines.extend(rng.sample(_FORUM_LINES, _between(1, 3, rng)))
    if rng.random() < 0.3:
        lines.append(rng.choice(pools.sentences))
    if rng.random() < 0.15:
        if rng.random() < 0.6:
            email, phone = person.email_in(ELEARNING), person.phone
        else:
            other = int(rng.random() * crowd.count)
            email, phone = crowd.email(other), crowd.phone(other)
        contact = rng.choice(_CONTACT_LINES).format(email=email, phone=_messy_phone(phone, rng))
        lines.insert(_between(1 if opener else 0, len(lines), rng), contact)
    return " ".join(lines)

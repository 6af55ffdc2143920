"""Connections to the estate's databases and the control database, resolved from the catalog."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from retention.config.catalog import Catalog, expand_var
from retention.config.settings import private_dir


class EstateError(Exception):
    """A source cannot be reached; the message names it and how to fix it."""


def _sqlite_file(url: sa.URL) -> Path | None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def parse_url(url: str | None, what: str, env: str) -> sa.URL:
    """A database URL that SQLAlchemy can use, or EstateError saying what is wrong (never the password)."""
    if not url:
        raise EstateError(f"{what}: no database URL; set {env} to a SQLAlchemy URL")
    try:
        parsed = sa.make_url(url)
        parsed.get_dialect().import_dbapi()
    except sa.exc.ArgumentError:
        raise EstateError(
            f"{what}: {env} holds no database URL; set it to a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db"
        ) from None
    except (sa.exc.NoSuchModuleError, ImportError):
        name = url.split(":", 1)[0]
        raise EstateError(
            f"{what}: {env} names the database dialect {name!r}, which is not installed; use sqlite, "
            "postgresql+psycopg or mysql+pymysql"
        ) from None
    return parsed


def same_database(a: sa.URL, b: sa.URL) -> bool:
    """Whether two URLs lead to the same database (the same SQLite file, or the same server and database)."""
    file_a, file_b = _sqlite_file(a), _sqlite_file(b)
    if file_a is not None or file_b is not None:
        return file_a is not None and file_b is not None and file_a.resolve() == file_b.resolve()
    return (a.get_backend_name(), a.host, a.port, a.database) == (b.get_backend_name(), b.host, b.port, b.database)


def make_engine(url: str, *, create_sqlite_dir: bool = False) -> sa.Engine:
    parsed = sa.make_url(url)
    path = _sqlite_file(parsed)
    if path is not None and create_sqlite_dir:
        private_dir(path.parent)
    # hide_parameters: a database error must not copy row values into logs or Dagster's event log
    kwargs: dict[str, object] = {"pool_pre_ping": True, "hide_parameters": True}
    if parsed.get_backend_name() == "mysql":
        kwargs["pool_recycle"] = 3600
    return sa.create_engine(parsed, **kwargs)


def control_engine(url: str) -> sa.Engine:
    """The control database's engine. On SQLite it runs in WAL mode: a commit then writes and syncs one log
    instead of a rollback journal and the file, which makes the apply step's per-batch ledger commits
    cheaper, and readers (sensors, the report) no longer block the run's writes. The file is the owner's
    alone: it holds the identifiers of pending requests (SQLite gives its log files the same permissions)."""
    engine = make_engine(url, create_sqlite_dir=True)
    if engine.dialect.name == "sqlite":
        path = _sqlite_file(sa.make_url(url))
        if path is not None and not path.is_dir():  # a folder fails on connecting, with the driver's message
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            path.chmod(0o600)
        sa.event.listen(engine, "connect", _wal)
    return engine


def _wal(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[attr-defined]


@dataclass
class Estate:
    """One engine per source and one for the control database."""

    catalog: Catalog
    sources: dict[str, sa.Engine] = field(default_factory=dict)
    control: sa.Engine | None = None

    @classmethod
    def connect(cls, catalog: Catalog, *, require_existing: bool = True) -> Estate:
        estate = cls(catalog)
        for name in catalog.sources:
            url = source_url(catalog, name, require_existing=require_existing)
            estate.sources[name] = make_engine(url.render_as_string(hide_password=False))
        control_url = parse_url(catalog.control_url(), "the control database", catalog.control_url_env)
        estate.control = control_engine(control_url.render_as_string(hide_password=False))
        return estate

    def dispose(self) -> None:
        for engine in self.sources.values():
            engine.dispose()
        if self.control is not None:
            self.control.dispose()


def source_url(catalog: Catalog, name: str, *, require_existing: bool = True) -> sa.URL:
    """The source's URL; a SQLite file must exist (connecting would create an empty one)."""
    source = catalog.sources[name]
    url = parse_url(source.url(), f"source {name!r}", source.url_env)
    path = _sqlite_file(url)
    if require_existing and path is not None and not path.exists():
        raise EstateError(
            f"source {name!r}: the SQLite database {path} does not exist; create the demo estate with "
            f"`retention demo-estate` or set {source.url_env} to the database's URL"
        )
    return url


DEMO_CATALOG_SHA256 = "3a098b86ea58d529769fa94d0d6521803a769092dc6263491fa638845d539bd7"
"""`catalog_digest` of the shipped config/catalog.yaml: only that catalog, unchanged, may run on the generated
demo key. A change to the shipped catalog changes it too (a unit test prints the new value)."""


def catalog_digest(catalog: Catalog) -> str:
    canonical = json.dumps(catalog.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_demo(catalog: Catalog) -> bool:
    """The demo is the estate as shipped: the shipped catalog unchanged, every source on its default SQLite URL,
    none set by environment. Anything else is someone's real estate and needs a real key."""
    return catalog_digest(catalog) == DEMO_CATALOG_SHA256 and all(
        src.default_url is not None
        and src.url() == expand_var(src.default_url)
        and src.default_url.startswith("sqlite")
        for src in catalog.sources.values()
    )

"""Running the control database's schema revisions (Alembic, configured in code: no alembic.ini, no URL).

Every entry point calls `ensure_schema` before it touches the control database, so being at the newest
revision must be cheap to confirm: once per engine and process it is remembered, and the first time it is one
read of `alembic_version`. Only a database behind the newest revision runs Alembic, under a lock per database
so that two processes starting on a fresh database do not both create it.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
"""Alembic's script directory: env.py, the template for new revisions, and versions/."""

LOCK_WAIT_SECONDS = 120
"""How long a process waits for another one's schema upgrade of the same database (MariaDB's GET_LOCK)."""

_PG_LOCK_KEY = 0x7265_7465_6E74_696F  # any fixed bigint; advisory locks are per database already

_at_head: weakref.WeakSet[sa.Engine] = weakref.WeakSet()

_RACE_ERRORS = (sa.exc.IntegrityError, sa.exc.OperationalError, sa.exc.ProgrammingError)


class SchemaError(Exception):
    """The control database's schema cannot be brought to this version's; the message says why and what to do."""


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for the control database; env.py runs the revisions on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of the engine knows."""
    head = _script().get_current_head()
    if head is None:
        raise SchemaError(f"no schema revisions found in {MIGRATIONS.name}/versions; the package is incomplete")
    return head


def current_revisions(engine: sa.Engine) -> frozenset[str] | None:
    """The revisions `alembic_version` records, in one read; None when it cannot be read, which is the case
    for an empty database and for one an earlier version of the engine wrote."""
    try:
        with engine.connect() as conn:
            return frozenset(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return None


def upgrade_to_head(engine: sa.Engine) -> None:
    """Bring the database to the newest revision, unless this process already knows it is there."""
    if engine in _at_head:
        return
    head = head_revision()
    current = current_revisions(engine)
    if current != {head}:
        _refuse_unknown(current)
        try:
            _upgrade(engine)
        except _RACE_ERRORS:
            # another process may have upgraded it between our read and our upgrade: then all is well
            if current_revisions(engine) != {head}:
                raise
    _at_head.add(engine)


def _refuse_unknown(current: frozenset[str] | None) -> None:
    """A newer engine has upgraded the database: this one must not write to a schema it does not know."""
    known = {script.revision for script in _script().walk_revisions()}
    unknown = sorted((current or frozenset()) - known)
    if unknown:
        raise SchemaError(
            f"the control database is at schema revision {', '.join(unknown)}, which this version of the engine "
            f"does not know (its newest is {head_revision()}); it was upgraded by a newer version: run that one"
        )


def _upgrade(engine: sa.Engine) -> None:
    with engine.connect() as conn, _exclusive(conn):
        command.upgrade(alembic_config(conn), "head")
        conn.commit()


@contextmanager
def _exclusive(conn: sa.Connection) -> Iterator[None]:
    """Hold the database's schema lock while upgrading, so a second process waits and then finds it done.
    PostgreSQL: a transaction-level advisory lock. SQLite: the database's write lock, taken at BEGIN.
    MariaDB: a named lock for the session (its DDL commits implicitly, so no transaction can hold it)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        yield
    elif dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    elif dialect in ("mysql", "mariadb"):
        name = "CONCAT('retention-schema:', SHA1(DATABASE()))"
        got = conn.exec_driver_sql(f"SELECT GET_LOCK({name}, {LOCK_WAIT_SECONDS})").scalar()
        if got != 1:
            raise SchemaError(
                f"another process has held the control database's schema lock for over {LOCK_WAIT_SECONDS} s; "
                "let its upgrade finish (or end it) and try again"
            )
        conn.commit()  # the upgrade's reads start a fresh transaction, after the other process's upgrade
        try:
            yield
        finally:
            try:
                conn.rollback()
                conn.exec_driver_sql(f"SELECT RELEASE_LOCK({name})")
                conn.commit()
            except sa.exc.DBAPIError:
                conn.invalidate()  # closing the session releases its lock; the pool must not keep it
    else:
        yield

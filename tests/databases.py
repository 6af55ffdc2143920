"""Fresh, throw-away databases on SQLite and on the PostgreSQL and MariaDB servers, for tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

BACKENDS = ("sqlite", "postgresql", "mariadb")

SERVER_URLS = {
    "postgresql": os.environ.get("RETENTION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("RETENTION_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


class ServerDatabases:
    """Creates databases with unique names on one backend and drops them again."""

    def __init__(self, backend: str, tmp_dir: Path) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = backend
        self.tmp_dir = tmp_dir
        self._created: list[str] = []

    def new_url(self, label: str) -> str:
        name = f"rt_{label}_{uuid.uuid4().hex[:10]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_dir / (name + '.db')}"
        admin = sa.make_url(SERVER_URLS[self.backend])
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if self.backend == "mariadb":
                    conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                else:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa.exc.OperationalError as exc:
            raise RuntimeError(
                f"the {self.backend} server at {admin.render_as_string(hide_password=True)} is not reachable; "
                "start it (`.ci/run` does) or point RETENTION_TEST_POSTGRES_URL / RETENTION_TEST_MARIADB_URL at one"
            ) from exc
        finally:
            engine.dispose()
        self._created.append(name)
        return admin.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self.backend == "sqlite" or not self._created:
            return
        engine = sa.create_engine(SERVER_URLS[self.backend], isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self._created:
                if self.backend == "postgresql":
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        engine.dispose()
        self._created.clear()


@contextmanager
def server_databases(backend: str, tmp_dir: Path) -> Iterator[ServerDatabases]:
    dbs = ServerDatabases(backend, tmp_dir)
    try:
        yield dbs
    finally:
        dbs.drop_all()

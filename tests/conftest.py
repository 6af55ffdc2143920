from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# the code location's `defs` are built on import, from the environment: built here from the shipped files,
# before a test points RETENTION_CATALOG at another estate (a later run of the code location would get it)
import pipelines.definitions  # noqa: F401
from tests.databases import BACKENDS, ServerDatabases, server_databases


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite, once on PostgreSQL and once on MariaDB."""
    return request.param


@pytest.fixture
def databases(backend: str, tmp_path: Path) -> Iterator[ServerDatabases]:
    """Fresh databases on the test's backend, dropped afterwards: `databases.new_url("enrolment")`."""
    with server_databases(backend, tmp_path) as dbs:
        yield dbs

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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

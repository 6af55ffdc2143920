"""The control database holds the identifiers of pending requests: on SQLite its files are the owner's alone."""

from __future__ import annotations

import stat
from pathlib import Path

import sqlalchemy as sa

from retention.storage.engines import control_engine
from retention.storage.schema import ensure_schema


def test_the_control_database_file_and_its_log_are_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "control.db"
    engine = control_engine(f"sqlite:///{path}")
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
        files = [p for p in path.parent.iterdir() if p.name.startswith("control.db")]
        assert path in files
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    finally:
        engine.dispose()


def test_an_existing_readable_control_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "control.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    control_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

"""The core does not depend on Dagster: every module of `retention/` and `anonymizers/` imports without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "retention" / "storage" / "migrations"
"""Alembic's scripts: it loads them itself, with its context set up, so they are not imported here."""


def core_modules() -> list[str]:
    modules = []
    for package in ("retention", "anonymizers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if MIGRATIONS in path.parents:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.append(".".join(p for p in parts if p != "__init__"))
    return modules


def test_core_imports_without_dagster() -> None:
    modules = core_modules()
    assert "retention.daily.planning" in modules and "anonymizers.registry" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

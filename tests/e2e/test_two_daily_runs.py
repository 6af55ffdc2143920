"""Two daily runs of the same day at once: one applies, the other stops before it reads anything and names the
run that holds the daily lease; the databases and the ledger equal those of a single run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from retention.storage.leases import DEFAULT_LEASE_SECONDS
from tests.databases import server_databases
from tests.e2e.test_kill_resume import estate_state, ledger_rows, make_estate, reference_outcome, run


@pytest.mark.servers
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("gap", [0.0, 1.0])
def test_a_second_daily_run_is_refused_and_nothing_is_done_twice(backend: str, gap: float, tmp_path: Path) -> None:
    state, rows = reference_outcome(backend, tmp_path / "reference")
    with server_databases(backend, tmp_path) as databases:
        env = make_estate(databases, tmp_path, "two", DEFAULT_LEASE_SECONDS)  # a loaded machine's pauses do not end it
        first = run(env)
        time.sleep(gap)
        second = run(env)
        outputs = [p.communicate(timeout=300)[0].decode() for p in (first, second)]
        codes = sorted(p.returncode for p in (first, second))
        assert codes == [0, 1], "\n\n".join(outputs)
        refused = outputs[[first.returncode, second.returncode].index(1)]
        assert "another daily run is under way: run " in " ".join(refused.split()), refused
        assert "Traceback" not in refused
        assert estate_state(env) == state
        assert ledger_rows(env) == rows

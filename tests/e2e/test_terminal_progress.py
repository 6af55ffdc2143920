"""Progress shows while the run goes on: under a pseudo-terminal, `retention run` paused inside its apply step
has already drawn the steps it finished and the bar of the table it applies; piped, the same run prints plain
lines without cursor movement. Nothing the display draws ends up in Dagster's compute logs.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from tests.databases import server_databases
from tests.requests_support import ANCHOR, demo_estate

ROOT = Path(__file__).resolve().parents[2]
ESCAPE = "\x1b["
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """What a reader sees of the text, without colours and cursor movements."""
    return CONTROL.sub("", text)


class Terminal:
    """A command on a pseudo-terminal of 120 columns, its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the other side closed: the command ended
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def wait_for(self, *needles: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text
            if all(n in plain(text) for n in needles):
                return text
            assert self.process.poll() is None, f"the command ended first:\n{text}"
            time.sleep(0.1)
        raise AssertionError(f"not shown within {timeout} s: {needles}\n{self.text}")

    def finish(self) -> tuple[int, str]:
        code = self.process.wait(timeout=300)
        self.reader.join(timeout=10)
        os.close(self.master)
        return code, self.text


def compute_logs(home: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in home.rglob("*") if p.suffix in (".out", ".err"))


def test_a_run_draws_its_progress_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with server_databases("sqlite", tmp_path) as dbs:
        demo_estate(monkeypatch, dbs, tmp_path, people=60, seed=29)
        folder = tmp_path / "signals"
        folder.mkdir()
        env = os.environ | {"FAULT_DIR": str(folder), "TERM": "xterm-256color", "COLUMNS": "120"}
        env.pop("NO_COLOR", None)
        command = [sys.executable, "-m", "tests.fault_run", "wait:after_source:1"]
        terminal = Terminal([*command, "run", "--as-of", ANCHOR.isoformat(), "--confirm-large-plan"], env)
        deadline = time.monotonic() + 180
        while not (folder / "reached").exists():
            assert terminal.process.poll() is None and time.monotonic() < deadline, terminal.text
            time.sleep(0.1)
        shown = terminal.wait_for("retention_plan", "done", "apply")
        assert "the daily job" not in plain(shown), "the summary came before the run ended"
        assert ESCAPE in shown, "a terminal gets a live display"
        (folder / "go").touch()
        code, shown = terminal.finish()
        assert code == 0, plain(shown)
        assert "the daily job succeeded" in plain(shown)
        home = Path(os.environ["DAGSTER_HOME"])
        assert list(home.rglob("*.out")), "Dagster captured the steps' output"
        assert "daily run for" not in compute_logs(home), "the display went into the steps' compute logs"

        piped = subprocess.run(
            [sys.executable, "-m", "cli", "run", "--as-of", ANCHOR.isoformat(), "--confirm-large-plan"],
            cwd=ROOT,
            env=os.environ | {"COLUMNS": "120"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert piped.returncode == 0, piped.stdout + piped.stderr
        assert ESCAPE not in piped.stdout, "no cursor movement in a log"
        assert "retention_plan: done" in piped.stdout, piped.stdout

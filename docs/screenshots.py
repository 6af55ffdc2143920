"""Screenshots of the Dagster UI for the README: the asset graph, a snapshot's column schema, a finished backfill.

`make screenshots` (needs Chromium, e.g. Debian's `chromium` package, and the `docs` extra). It builds a small
demo estate in a temporary folder, starts `dagster dev` on it, launches a backfill of three days through the
webserver's GraphQL endpoint (what the UI's backfill dialog sends), waits for the daemon to finish it, and
photographs the pages in a headless browser. Nothing of the project's own var/ is touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs"
DAYS = [dt.date.today() - dt.timedelta(days=n) for n in (3, 2, 1)]

LAUNCH = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}"""
ASSETS = "query { assetNodes { assetKey { path } jobNames } }"
BACKFILL = "query ($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"


SHOTS = [
    ("/locations/pipelines.definitions/asset-groups/plan/lineage", "ui-asset-graph.png", "retention_plan"),
    ("/assets/snapshot/enrolment", "ui-snapshot-columns.png", "customers.email"),
    ("/runs/b/{backfill}?tab=runs", "ui-backfill.png", "Succeeded"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise RuntimeError(answer["errors"])
    return answer["data"]


def wait_for_server(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("dagster dev stopped")
        try:
            graphql(port, "{ version }")
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError("the webserver did not come up")


def shoot(page: Page, url: str, name: str, wait_for: str) -> None:
    page.goto(url)
    page.get_by_text(wait_for).first.wait_for(timeout=60_000)
    skip = page.get_by_role("button", name="Skip")  # the webserver's first-visit invitation
    with contextlib.suppress(PlaywrightTimeout):
        skip.first.click(timeout=10_000)
    time.sleep(3)  # let the graph lay itself out
    page.screenshot(path=str(OUT / name))
    print(f"docs/{name}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="retention-screens-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env |= {"RETENTION_VAR": str(work / "var"), "DAGSTER_HOME": str(work / "var" / "dagster")}
    retention = [sys.executable, "-m", "cli"]
    subprocess.run([*retention, "demo-estate", "--people", "300"], cwd=ROOT, env=env, check=True)
    first = (DAYS[0] - dt.timedelta(days=1)).isoformat()  # a day run from the terminal, before the backfill
    subprocess.run([*retention, "run", "--as-of", first, "--confirm-large-plan"], cwd=ROOT, env=env, check=True)
    port = free_port()
    dagster = Path(sys.executable).parent / "dagster"
    server = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-p", str(port)], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        wait_for_server(port, server)
        nodes = graphql(port, ASSETS)["assetNodes"]
        keys = [{"path": n["assetKey"]["path"]} for n in nodes if "daily_retention" in n["jobNames"]]
        params = {
            "assetSelection": keys,
            "partitionNames": [d.isoformat() for d in DAYS],
            "runConfigData": {"ops": {"retention_plan": {"config": {"confirm_large_plan": True}}}},
        }
        backfill = graphql(port, LAUNCH, {"params": params})["launchPartitionBackfill"]["backfillId"]
        deadline = time.monotonic() + 1200
        while graphql(port, BACKFILL, {"id": backfill})["partitionBackfillOrError"]["status"] == "REQUESTED":
            if time.monotonic() > deadline:
                raise RuntimeError("the backfill did not finish within 20 minutes")
            time.sleep(5)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "chromium")
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            for url, name, text in SHOTS:
                shoot(page, base + url.format(backfill=backfill), name, text)
            browser.close()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

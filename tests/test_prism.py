"""The suite against Stoplight Prism mocking the fragment: a third-party server that knows only the spec."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT = 90.0
FRAGMENT = REPO_ROOT / "openapi" / "cancel-task.yaml"


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [npx, "--yes", "@stoplight/prism-cli@5", "mock", "-p", str(port), "-h", "127.0.0.1", str(FRAGMENT)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.skip(f"Prism could not be started (npm unreachable?): {output.strip()[-300:]}")
            try:
                requests.get(base_url + "/v1/tasks/probe", timeout=1)
                break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.skip(f"Prism did not listen within {STARTUP_TIMEOUT:g} s (npm unreachable?)")
            time.sleep(0.25)
        yield base_url
    finally:
        # npx starts node children: end the whole process group this test started.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def test_what_prism_sends(prism: str) -> None:
    response = requests.delete(prism + "/v1/tasks/anything", timeout=10)
    print(f"\nPrism DELETE: {response.status_code} {response.headers.get('content-type')!r} {response.text[:200]!r}")
    assert response.status_code in (200, 404, 409, 500)
    for status in (404, 409, 500):
        forced = requests.delete(prism + "/v1/tasks/anything", headers={"Prefer": f"code={status}"}, timeout=10)
        print(f"Prism Prefer code={status}: {forced.status_code} {forced.headers.get('content-type')!r} "
              f"{forced.text[:200]!r}")


def test_suite_against_prism(prism: str, tmp_path: Path) -> None:
    exe = shutil.which("sddc-conformance", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "conformance"]
    report_dir = tmp_path / "reports"
    result = subprocess.run(
        [*command, "run", "--base-url", prism, "--token", "prism-token", "--profile", "schema",
         "--max-examples", "30", "--seed", "1", "--report-dir", str(report_dir)],
        capture_output=True, text=True, timeout=300,
    )
    print(result.stdout)
    print(result.stderr)
    assert result.returncode in (0, 1), result.stderr
    findings = json.loads((report_dir / "findings.json").read_text(encoding="utf-8"))
    print(json.dumps({r["id"]: [r["outcome"], r["reason"]] for r in findings["requirements"]}, indent=1))
    assert findings["requests_sent"] >= 30

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


@pytest.fixture()
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
    # Prism answers every DELETE with the first documented response: 200 with no body, whatever
    # the id; that is what makes it a useful "knows only the spec" target.
    for task_id in ("anything", "00000000-0000-0000-0000-000000000000"):
        response = requests.delete(prism + f"/v1/tasks/{task_id}", timeout=10)
        assert response.status_code == 200, response.text[:200]
        assert response.content == b""
    # It knows no GET of a task (the fragment documents none).
    assert requests.get(prism + "/v1/tasks/anything", timeout=10).status_code in (404, 405)


def _run(prism: str, report_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--base-url", prism, "--token", "prism-token",
         "--seed", "1", "--report-dir", str(report_dir), *args],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_prism_dies_on_an_overlong_utf8_escape(prism: str, tmp_path: Path) -> None:
    # The id corpus sends `%C0%AF` (an overlong UTF-8 "/"): Prism's process dies on it, and every
    # later request is refused. The suite says so: no verdict, with the request that did it.
    report_dir = tmp_path / "reports"
    result = _run(prism, report_dir, "--profile", "schema", "--concurrency", "1")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "stopped answering" in result.stderr and "Traceback" not in result.stderr
    findings = json.loads((report_dir / "findings.json").read_text(encoding="utf-8"))
    assert findings["verdict"] == "NO VERDICT"
    answers = next(r for r in findings["requirements"] if r["id"] == "SRV-ANSWERS")
    assert any("%C0%AF" in (f["exchange"] or {}).get("request", {}).get("url", "") for f in answers["findings"])


def test_suite_against_prism(prism: str, tmp_path: Path) -> None:
    # The behaviour profile (no id corpus, so Prism stays up) shows how a spec-only mock fares.
    report_dir = tmp_path / "reports"
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--base-url", prism, "--token", "prism-token",
         "--profile", "behavior", "--task", "SUCCESSFUL=prism-successful", "--task", "IN_PROGRESS=prism-in-progress",
         "--max-examples", "20", "--seed", "1", "--report-dir", str(report_dir)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    findings = json.loads((report_dir / "findings.json").read_text(encoding="utf-8"))
    outcomes = {r["id"]: r["outcome"] for r in findings["requirements"]}
    assert findings["verdict"] == "NOT CONFORMANT"
    # A server that answers 200 to everything: unknown ids (also in the state machine) and a
    # finished task get 200, and nothing checks the token.
    failed = {rid for rid, outcome in outcomes.items() if outcome == "FAIL"}
    assert failed == {"BEH-UNKNOWN-404", "BEH-NOT-CANCELLABLE", "AUTH-REQUIRED", "BEH-STATEFUL"}
    # Without GET the suite cannot tell a repeat cancel from one still pending on an asynchronous
    # target, so the second 200 is not held against Prism: BEH-RECANCEL is NOT RUN.
    assert outcomes["BEH-RECANCEL"] == "NOT RUN"
    # The 200 itself is what the fragment documents; with no GET of a task the cancel's effect
    # cannot be seen, so BEH-CANCEL is NOT RUN, not passed and not failed.
    for rid in ("SRV-ANSWERS", "SCH-STATUS", "SCH-200-EMPTY", "SRV-NO-5XX"):
        assert outcomes[rid] == "SKIPPED", rid  # response checks belong to the schema profile
    assert outcomes["BEH-CANCEL"] == "NOT RUN"
    assert findings["requests_sent"] >= 20

"""Ctrl-C mid-run: exit 130, one line, no traceback, NO VERDICT reports of what was seen."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_preflight import WORKTREE

# Bounded: the run prints a progress line every couple of seconds once it sends.
WAIT_FOR_REQUESTS = 120.0


@pytest.mark.slow
def test_sigint_keeps_no_verdict_reports(tmp_path: Path) -> None:
    reports = tmp_path / "r"
    environment = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    environment["PYTHONPATH"] = str(WORKTREE)
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", "--max-examples", "100000", "--defect", "slow-responses",
         "--report-dir", str(reports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=environment,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        # Wait for a progress line that counts requests actually sent (not a fixed sleep).
        while True:
            line = lines.get(timeout=WAIT_FOR_REQUESTS)
            if line.startswith("progress:") and not line.split("|")[1].strip().startswith("0/"):
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT_FOR_REQUESTS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [f"sddc-conformance: interrupted: NO VERDICT, reports in {reports}"]
    document = json.loads((reports / "findings.json").read_text("utf-8"))
    assert document["verdict"] == "NO VERDICT"
    assert document["stopped"] == "interrupted"
    assert document["requests_sent"] > 0

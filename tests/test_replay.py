"""`sddc-conformance replay`: failing requests of a report re-sent to the same or another target."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import TEST_PASSWORD, free_port, run_in_process

from conformance.engine.replay import rebased_path
from conformance.report import write_reports

CLI = [sys.executable, "-c", "from conformance.cli import main; main()"]
USER = "admin@local"


def _replay(report: Path, *args: str, password: str | None = TEST_PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    if password is not None:
        env["SDDC_PASSWORD"] = password
    return subprocess.run([*CLI, "replay", str(report), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _cancels(server: Any) -> list[Any]:
    return [r for r in server.request_log if r.method == "DELETE"]


@pytest.mark.slow
def test_replay_reproduces_a_failure_against_the_defective_server(
    defective_reports: Path, reference_server: Callable[..., Any]
) -> None:
    server = reference_server("plain-text-error")
    completed = _replay(defective_reports, "--base-url", server.base_url, "--username", USER)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "still fails: SCH-ERROR-BODY" in completed.stdout
    assert "fixed" not in completed.stdout.replace(" fixed,", "")
    # Replay logged in with its own credentials: the stored requests carry no token.
    assert any(r.method == "POST" and r.path == "/v1/tokens" for r in server.request_log)
    assert _cancels(server) and all(r.authenticated for r in _cancels(server))


def test_replay_reports_fixed_against_a_correct_server(
    defective_reports: Path, reference_server: Callable[..., Any]
) -> None:
    server = reference_server()
    completed = _replay(defective_reports, "--base-url", server.base_url, "--username", USER)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "fixed: SCH-ERROR-BODY" in completed.stdout
    assert "still fails" not in completed.stdout


def test_replay_with_a_token(defective_reports: Path, reference_server: Callable[..., Any]) -> None:
    server = reference_server("plain-text-error")
    pair = requests.post(f"{server.base_url}/v1/tokens", json={"username": USER, "password": TEST_PASSWORD},
                         timeout=10).json()
    completed = _replay(defective_reports, "--base-url", server.base_url, "--token", pair["accessToken"],
                        password=None)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "still fails: SCH-ERROR-BODY" in completed.stdout


def test_replay_without_credentials_never_calls_a_failure_fixed(
    defective_reports: Path, reference_server: Callable[..., Any]
) -> None:
    server = reference_server()
    completed = _replay(defective_reports, "--base-url", server.base_url, password=None)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "fixed:" not in completed.stdout and "credentials" in completed.stderr


def test_replay_defaults_to_the_recorded_target(defective_reports: Path) -> None:
    # Without credentials the recorded target is the default; the run's embedded server is gone.
    completed = _replay(defective_reports, password=None)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "127.0.0.1" in completed.stderr


def test_replay_with_credentials_needs_a_named_target(defective_reports: Path) -> None:
    completed = _replay(defective_reports, "--username", USER)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "--base-url" in completed.stderr and "127.0.0.1" in completed.stderr


def test_replay_of_an_unreachable_target(defective_reports: Path) -> None:
    completed = _replay(defective_reports, "--base-url", f"http://127.0.0.1:{free_port()}")
    assert completed.returncode == 3


@pytest.mark.slow
def test_scenario_findings_are_not_replayed(tmp_path: Path, reference_server: Callable[..., Any]) -> None:
    write_reports(run_in_process("unknown-id-409", max_examples=20, seed=4), tmp_path)
    server = reference_server()
    completed = _replay(tmp_path, "--base-url", server.base_url, "--username", USER)
    # The scenario is re-run against the new (correct) target: fixed, never sent to the recorded one.
    assert "fixed: BEH-UNKNOWN-404 scenario against " + server.base_url in completed.stdout, completed.stdout
    assert not [r for r in _cancels(server) if "BEH" in r.path]


def test_replay_needs_a_report(tmp_path: Path) -> None:
    assert _replay(tmp_path).returncode == 2
    (tmp_path / "findings.json").write_text("{", encoding="utf-8")
    assert _replay(tmp_path).returncode == 2


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("http://a:1/v1/tasks/x%2Fy?q=1", "http://a:1", "/v1/tasks/x%2Fy?q=1"),
        ("https://a/sddc/v1/tasks/x", "https://a/sddc", "/v1/tasks/x"),
        ("https://a/sddc/v1/tasks/x", None, "/sddc/v1/tasks/x"),
    ],
)
def test_recorded_urls_are_rebased(url: str, base: str | None, expected: str) -> None:
    assert rebased_path(url, base) == expected

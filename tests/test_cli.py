"""`sddc-conformance` as a user runs it: a subprocess, its exit code, its stderr, its reports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PASSWORD, free_port

from conformance.outcome import ExitCode

EXE = shutil.which("sddc-conformance", path=str(Path(sys.executable).parent)) or shutil.which("sddc-conformance")
TIMEOUT = 120


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [EXE, *args] if EXE else [sys.executable, "-m", "conformance", *args]
    environment = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    environment.update(env or {})
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=environment, cwd=cwd)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sddc-conformance: error: "), lines[0]
    return lines[0]


def test_run_help_documents_exit_codes() -> None:
    result = cli("run", "--help")
    assert result.returncode == 0
    # The epilog is generated from ExitCode: every member, with its number and its words.
    text = " ".join(result.stdout.split())
    for code in ExitCode:
        assert f"{int(code)} {' '.join(code.doc.split())}" in text
    for words in ("0 conformant", "1 not conformant", "2 usage", "3 no verdict: target unreachable", "4 internal error",
                  "130 interrupted"):
        assert words in text


def test_readme_exit_code_table_matches_exit_code_enum() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, flags=re.M))
    assert {int(k) for k in rows} == {int(c) for c in ExitCode}
    for code in ExitCode:
        assert rows[str(int(code))] == code.doc


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--no-such-flag"],
        ["run", "--max-examples", "0"],
        ["run", "--max-examples", "many"],
        ["run", "--profile", "everything"],
        ["no-such-command"],
        ["run", "--defect", "no-such-defect", "--max-examples", "1"],
        ["run", "--base-url", "ftp://127.0.0.1:1"],
    ],
)
def test_usage_errors_exit_2_in_one_line(args: list[str], tmp_path: Path) -> None:
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    one_line_error(result)
    assert not (tmp_path / "reports").exists()


def test_username_without_password(tmp_path: Path) -> None:
    result = cli("run", "--base-url", f"http://127.0.0.1:{free_port()}", "--username", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert "SDDC_PASSWORD" in one_line_error(result)


@pytest.mark.slow
def test_unreachable_target_exits_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("run", "--base-url", url, "--token", "t", "--max-examples", "5", "--report-dir",
                 str(tmp_path / "r"), "--timeout", "2")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") <= 2 and "Traceback" not in result.stderr
    assert url in result.stderr


def test_unreachable_login_exits_3_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("run", "--base-url", url, "--username", "admin@local", env={"SDDC_PASSWORD": "pw-unreach-1"},
                 cwd=tmp_path)
    assert result.returncode == 3
    line = one_line_error(result)
    assert url in line and "pw-unreach-1" not in line


def test_bad_credentials_exit_3(reference_server: Callable[..., Any], tmp_path: Path) -> None:
    server = reference_server()
    secret = "not-the-password-7c1e"
    result = cli("run", "--base-url", server.base_url, "--username", "admin@local", env={"SDDC_PASSWORD": secret},
                 cwd=tmp_path)
    assert result.returncode == 3
    line = one_line_error(result)
    assert "admin@local" in line and server.base_url in line
    assert secret not in result.stderr + result.stdout and TEST_PASSWORD not in result.stderr


@pytest.mark.parametrize("content", [None, "not json", '{"RUNNING": ["a"]}'])
def test_tasks_file_errors_exit_2(content: str | None, tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    if content is not None:
        path.write_text(content)
    result = cli("run", "--base-url", "http://127.0.0.1:1", "--token", "t", "--tasks-file", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "tasks file" in one_line_error(result)


def _findings(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / "findings.json").read_text(encoding="utf-8")))


def _evaluations(document: dict[str, Any]) -> dict[str, Any]:
    return {r["id"]: (r["outcome"], r["evaluations"]) for r in document["requirements"]}


def test_default_run_is_conformant_and_writes_reports(tmp_path: Path) -> None:
    report_dir = tmp_path / "reports"
    result = cli("run", "--max-examples", "30", "--seed", "11", "--report-dir", str(report_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CONFORMANT" in result.stdout
    assert (report_dir / "junit.xml").is_file()
    findings = _findings(report_dir)
    assert findings["verdict"] == "CONFORMANT" and findings["target"]["embedded"] is True
    assert findings["requests_sent"] >= 30 and findings["seed"] == 11 and findings["profile"] == "full"


@pytest.mark.slow
def test_same_seed_same_requests(tmp_path: Path) -> None:
    # The schema profile: generated ids only, so nothing but the seed decides what is sent.
    runs = []
    for name in ("first", "second"):
        report_dir = tmp_path / name
        result = cli("run", "--profile", "schema", "--max-examples", "30", "--seed", "11", "--report-dir",
                     str(report_dir), "--quiet")
        assert result.returncode == 0, result.stderr
        runs.append((result.stdout.strip(), _findings(report_dir)))
    (line1, first), (line2, second) = runs
    # The wall time differs from run to run; everything else on the line is the same.
    same = [re.sub(r" in [0-9.]+ s,", ",", line) for line in (line1, line2)]
    assert same[0] == same[1] == f"{first['headline']}: {first['requests_sent']} requests, seed 11"
    assert first["requests_sent"] == second["requests_sent"] >= 30
    assert first["exchanges_checked"] == second["exchanges_checked"]
    assert _evaluations(first) == _evaluations(second)


def test_defect_run_exits_1(tmp_path: Path) -> None:
    report_dir = tmp_path / "r"
    result = cli("run", "--profile", "schema", "--max-examples", "10", "--seed", "1", "--defect",
                 "error-wrong-type-top", "--report-dir", str(report_dir))
    assert result.returncode == 1, result.stderr
    failed = {r["id"] for r in _findings(report_dir)["requirements"] if r["outcome"] == "FAIL"}
    assert "SCH-ERROR-BODY" in failed


@pytest.mark.slow
def test_tasks_file_from_serve_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    password = "serve-secret-2b7d"
    command = [EXE, "serve", "--port", "0", "--state-file", str(state)] if EXE else [
        sys.executable, "-m", "conformance", "serve", "--port", "0", "--state-file", str(state)]
    env = {**os.environ, "SDDC_PASSWORD": password}
    serve = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (state.is_file() and state.stat().st_size):
            assert serve.poll() is None, serve.communicate()
            assert time.monotonic() < deadline, "serve did not write its state file"
            time.sleep(0.05)
        document = json.loads(state.read_text())
        assert document["password"] == password and document["tasks"]["IN_PROGRESS"]
        report_dir = tmp_path / "r"
        result = cli("run", "--base-url", document["base_url"], "--username", document["username"],
                     "--tasks-file", str(state), "--max-examples", "20", "--seed", "5",
                     "--report-dir", str(report_dir), env={"SDDC_PASSWORD": password})
        assert result.returncode == 0, result.stdout + result.stderr
        findings = _findings(report_dir)
        assert findings["target"]["url"] == document["base_url"] and not findings["target"]["embedded"]
        assert password not in (report_dir / "findings.json").read_text()
        assert password not in (report_dir / "junit.xml").read_text()
    finally:
        serve.terminate()
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(5)

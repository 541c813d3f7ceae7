"""`sddc-conformance serve`: knobs as flags, a busy port, the loopback warning, a private state file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "serve-cli-test-password"


def _env(password: str | None = PASSWORD) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    env["PYTHONPATH"] = str(ROOT)
    if password:
        env["SDDC_PASSWORD"] = password
    return env


def _serve(*args: str, password: str | None = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance", "serve", *args], capture_output=True, text=True,
                          env=_env(password), cwd=ROOT, timeout=120)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _start(processes: list[subprocess.Popen[str]], *args: str, password: str | None = PASSWORD) -> str:
    """Start serve; return its first stdout lines once it says where it listens (bounded wait)."""
    process = subprocess.Popen([sys.executable, "-m", "conformance", "serve", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env(password), cwd=ROOT)
    processes.append(process)
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(2)]
    assert "listening on" in lines[0], lines
    return "".join(lines)


def _wait_for(path: Path) -> dict[str, object]:
    for _ in range(600):
        if path.exists() and path.stat().st_size:
            return json.loads(path.read_text(encoding="utf-8"))
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def test_knobs_are_flags(tmp_path: Path, started: list[subprocess.Popen[str]]) -> None:
    state = tmp_path / "state.json"
    _start(started, "--state-file", str(state), "--path-prefix", "/sddc-api", "--latency-ms", "1",
           "--settle-seconds", "0", "--backpressure-rate", "5", "--backpressure-burst", "2")
    document = _wait_for(state)
    base_url = str(document["base_url"])
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/sddc-api")
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    token = requests.post(f"{base_url}/v1/tokens", json={"username": document["username"], "password": PASSWORD},
                          timeout=10).json()["accessToken"]
    answer = requests.get(f"{base_url}/v1/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200
    outside = requests.get(base_url.removesuffix("/sddc-api") + "/v1/tasks", timeout=10)
    assert outside.status_code == 404


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_without_state_file_the_password_goes_to_a_private_file_gone_on_exit(
        started: list[subprocess.Popen[str]], signum: signal.Signals) -> None:
    out = _start(started, password=None)
    match = re.search(r"written to (\S+state\.json)", out)
    assert match, out
    path = Path(match.group(1))
    document = _wait_for(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(document["password"]) not in out
    # Ctrl-C, a kill or a closed terminal: the password does not outlive the server.
    process = started[-1]
    process.send_signal(signum)
    process.communicate(timeout=60)
    assert process.returncode == 0
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize(("args", "option"), [(("--path-prefix", "no-slash"), "--path-prefix"),
                                               (("--backpressure-burst", "0"), "--backpressure-burst"),
                                               (("--token-lifetime", "-1"), "--token-lifetime"),
                                               (("--tls-cert", "pyproject.toml"), "--tls-key")])
def test_bad_knobs_are_usage_errors(args: tuple[str, ...], option: str) -> None:
    completed = _serve(*args)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert option in completed.stderr and "Traceback" not in completed.stderr


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        completed = _serve("--port", str(taken.getsockname()[1]))
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr.strip().count("\n") == 0 and "in use" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_non_loopback_host_warns(tmp_path: Path) -> None:
    # Nothing ever listens beyond loopback here: the port is taken on 0.0.0.0 first, so serve
    # warns and then stops at PortInUse (as in test_reference_bounds).
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        completed = _serve("--host", "0.0.0.0", "--port", str(taken.getsockname()[1]),
                           "--state-file", str(tmp_path / "state.json"))
    assert completed.returncode == 2
    assert "warning: the reference server listens on 0.0.0.0" in completed.stderr
    assert len([line for line in completed.stderr.splitlines() if "error:" in line]) == 1


def test_help_documents_tls_and_knobs() -> None:
    completed = _serve("--help")
    for flag in ("--tls-cert", "--tls-key", "--latency-ms", "--path-prefix", "--settle-seconds",
                 "--backpressure-rate", "--backpressure-burst", "--token-lifetime", "Exit codes:"):
        assert flag in completed.stdout
    assert "PEM" in completed.stdout


def test_the_defects_table_is_aligned_and_names_flags_not_fields() -> None:
    from click.testing import CliRunner

    from conformance.cli import cli
    from conformance.reference.defects import DEFECTS

    output = CliRunner().invoke(cli, ["defects"], env={"COLUMNS": "100"}, catch_exceptions=False).output
    lines = output.splitlines()
    header = lines[0]
    category, expect, what = header.index("CATEGORY"), header.index("EXPECT"), header.index("WHAT")
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith(" ")}
    assert set(rows) == set(DEFECTS)
    for name, defect in DEFECTS.items():
        row = rows[name]
        # Every column starts where its heading does, however long the name (refused-cancel-changes-task).
        assert row[category:].startswith(defect.category + " ") and row[expect:].startswith(defect.expect + " ")
        assert row[what:] == defect.description.split()[0] or row[what:].startswith(defect.description.split()[0] + " ")
    assert all(line[:what].isspace() for line in lines[1:] if line.startswith(" "))
    assert max(len(line) for line in lines) <= 100
    # What a user can set is named as the flag that sets it, never as an internal field.
    assert "ReferenceConfig" not in output and not re.search(r"\b[a-z]+_[a-z_]+\b", output)
    serve_help = CliRunner().invoke(cli, ["serve", "--help"]).output
    for flag in set(re.findall(r"--[a-z-]+", output)):
        assert flag in serve_help, flag

"""Replay of a tampered findings.json: nothing, and no credential, reaches a server the user did not name."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PASSWORD

from conformance.engine.replay import UnsafeRecording, rebuild_request

ROOT = Path(__file__).resolve().parent.parent
ERROR_BODY = json.dumps({"errorCode": "TASK_NOT_FOUND", "message": "Task not found"}).encode()


class Capture:
    """A tiny HTTP server on 127.0.0.1 that records every request (path, Authorization header)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                capture.requests.append((self.command, self.path, self.headers.get("Authorization")))
                self.send_response(404, "Not Found")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(ERROR_BODY)))
                self.end_headers()
                self.wfile.write(ERROR_BODY)

            do_GET = do_DELETE = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def capture() -> Iterator[Callable[[], Capture]]:
    started: list[Capture] = []

    def start() -> Capture:
        started.append(Capture())
        return started[-1]

    yield start
    for server in started:
        server.close()


def _report(tmp_path: Path, target: str, method: str, url: str, requirement: str = "SCH-ERROR-BODY") -> Path:
    finding: dict[str, Any] = {
        "requirement": requirement,
        "level": "fail",
        "summary": "recorded failure",
        "exchange": {
            "request": {"method": method, "url": url, "headers": {"Authorization": "Bearer ${SDDC_TOKEN}"}},
            "response": {"status": 404},
        },
    }
    document = {"target": {"url": target}, "requirements": [{"id": requirement, "findings": [finding]}]}
    (tmp_path / "findings.json").write_text(json.dumps(document), encoding="utf-8")
    return tmp_path


def _replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "conformance", "replay", *args], capture_output=True, text=True,
                          env=environ, cwd=ROOT, timeout=120)


@pytest.mark.parametrize(
    "tampered",
    [
        # Text that a joining replay would have turned into another host or port.
        "{Q}/v1/tasks/x",  # "@127.0.0.1:Q/..." after the base: userinfo, then the capture server
        ":38999/v1/tasks/x",
        ".evil.example/v1/tasks/x",
        # Whole URLs that do not lie under the recorded target.
        "http://127.0.0.1:{P}:38999/v1/tasks/x",
        "http://127.0.0.1:{P}@127.0.0.1:{QP}/v1/tasks/x",
        "http://127.0.0.1:{QP}/v1/tasks/x",
        "http://127.0.0.1:{P}/v1/tasks/x y",
        "http://127.0.0.1:{P}/v1/tasks/x\r\nX-Injected: 1",
    ],
)
def test_tampered_recorded_urls_reach_nobody(tmp_path: Path, capture: Callable[[], Capture], tampered: str) -> None:
    base, evil = capture(), capture()
    url = tampered.format(P=base.port, QP=evil.port, Q=f"@127.0.0.1:{evil.port}")
    report = _report(tmp_path, base.url, "DELETE", url)
    completed = _replay(str(report), "--base-url", base.url, "--token", "secret-token-123")
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert base.requests == [] and evil.requests == []
    assert "secret-token-123" not in completed.stdout + completed.stderr


@pytest.mark.parametrize("method", ["POST", "DELETE\r\nX-Injected: 1", "get", "PATCH"])
def test_methods_outside_the_catalogue_are_refused(tmp_path: Path, capture: Callable[[], Capture],
                                                   method: str) -> None:
    base = capture()
    report = _report(tmp_path, base.url, method, f"{base.url}/v1/tasks/x")
    completed = _replay(str(report), "--base-url", base.url, "--token", "t")
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "\r" not in completed.stderr and len(completed.stderr.strip().splitlines()) == 1
    assert base.requests == []


def test_credentials_never_go_to_the_recorded_target(tmp_path: Path, capture: Callable[[], Capture]) -> None:
    recorded = capture()
    report = _report(tmp_path, recorded.url + "/\x1b[2Jsddc", "DELETE", f"{recorded.url}/v1/tasks/x")
    cases: list[tuple[tuple[str, ...], dict[str, str]]] = [
        (("--token", "t0k"), {}),
        (("--username", "admin"), {"SDDC_PASSWORD": "pw"}),
    ]
    for args, env in cases:
        completed = _replay(str(report), *args, env=env)
        assert completed.returncode == 2, completed.stdout + completed.stderr
        assert "--base-url" in completed.stderr and f"127.0.0.1:{recorded.port}" in completed.stderr
        assert "\x1b" not in completed.stderr
    assert recorded.requests == []


def test_a_token_in_the_environment_is_never_picked_up(tmp_path: Path, capture: Callable[[], Capture]) -> None:
    recorded = capture()
    report = _report(tmp_path, recorded.url, "DELETE", f"{recorded.url}/v1/tasks/x")
    _replay(str(report), env={"SDDC_TOKEN": "env-token-456"})
    # Without credentials replay may go to the recorded target, but never with SDDC_TOKEN.
    assert all(auth is None for _, _, auth in recorded.requests)


def test_a_safe_recording_is_rebuilt_on_the_new_base(tmp_path: Path, capture: Callable[[], Capture]) -> None:
    old, new = capture(), capture()
    report = _report(tmp_path, old.url + "/sddc", "DELETE", f"{old.url}/sddc/v1/tasks/a%2Fb?x=1")
    completed = _replay(str(report), "--base-url", new.url + "/other", "--token", "tok")
    assert new.requests == [("DELETE", "/other/v1/tasks/a%2Fb?x=1", "Bearer tok")]
    assert old.requests == []
    # Every line names the new target, never the recorded one.
    assert str(old.port) not in completed.stdout and new.url in completed.stdout
    assert "credentials: the token given with --token" in completed.stdout


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("http://a:1/v1/tasks/x", "http://a:1", "/v1/tasks/x"),
        ("http://a/v1/tasks/x", "http://a:80", "/v1/tasks/x"),
        ("https://a/sddc/v1/tasks/x?q=1", "https://a/sddc/", "/v1/tasks/x?q=1"),
    ],
)
def test_rebuild_request_keeps_safe_requests(url: str, base: str, expected: str) -> None:
    assert rebuild_request("DELETE", url, base) == ("DELETE", expected)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://a/other/v1/tasks/x", "https://a/sddc"),
        ("https://a/sddcx/v1/tasks/x", "https://a/sddc"),
        ("https://a:1:2/v1/tasks/x", "https://a:1"),
        ("https://a//evil/v1", "https://a"),
        ("http://a/v1/tasks/x", "https://a"),
        ("http://a/v1/tasks/x#frag", "http://a"),
        ("/v1/tasks/x", "http://a"),
    ],
)
def test_rebuild_request_refuses_what_leaves_the_recorded_target(url: str, base: str) -> None:
    with pytest.raises(UnsafeRecording):
        rebuild_request("GET", url, base)


def test_a_base_url_with_a_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    report = _report(tmp_path, "http://127.0.0.1:1", "DELETE", "http://127.0.0.1:1/v1/tasks/x")
    completed = _replay(str(report), "--base-url", "http://user:hunter2secret@127.0.0.1:1")
    assert completed.returncode == 2
    assert "--base-url" in completed.stderr and "hunter2secret" not in completed.stdout + completed.stderr


def test_a_scenario_needing_a_task_is_not_replayable_and_never_exit_0(
    tmp_path: Path, reference_server: Callable[..., Any]
) -> None:
    server = reference_server()
    report = _report(tmp_path, "http://127.0.0.1:1", "DELETE", "", requirement="BEH-CANCEL")
    args = (str(report), "--base-url", server.base_url, "--username", server.config.username)
    completed = _replay(*args, env={"SDDC_PASSWORD": TEST_PASSWORD})
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "not replayable: BEH-CANCEL" in completed.stdout and "pass --task IN_PROGRESS=" in completed.stdout
    # Decided from what was given, before anything went out: not even a login.
    assert not server.request_log

    task = server.state_document()["tasks"]["IN_PROGRESS"][0]
    completed = _replay(*args, "--task", f"IN_PROGRESS={task}", env={"SDDC_PASSWORD": TEST_PASSWORD})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"fixed: BEH-CANCEL scenario against {server.base_url}" in completed.stdout
    assert "127.0.0.1:1/" not in completed.stdout


def test_replay_says_once_what_each_scenario_lacks_and_sends_nothing(
        reference_server: Callable[..., Any]) -> None:
    from conformance.engine.replay import Verdict, replay, scenario_runner
    from conformance.engine.target import TargetConfig
    from conformance.options import RunOptions

    server = reference_server()
    findings = [{"requirement": rid, "level": "fail", "summary": "recorded", "exchange": {}}
                for rid in ("BEH-CANCEL", "BEH-NOT-CANCELLABLE", "BEH-NOT-CANCELLABLE", "BEH-STATEFUL")]
    document = {"target": {"url": "http://127.0.0.1:1"},
                "requirements": [{"id": "BEH", "findings": findings}]}
    options = RunOptions(base_url=server.base_url, username=server.config.username, password=TEST_PASSWORD)
    config = TargetConfig(base_url=server.base_url, username=server.config.username, password=TEST_PASSWORD)
    results = replay(document, config, scenario_runner=scenario_runner(options))
    by_requirement = {r.finding.requirement: r for r in results}
    assert [r.finding.requirement for r in results] == ["BEH-CANCEL", "BEH-NOT-CANCELLABLE", "BEH-STATEFUL"]
    assert all(r.verdict is Verdict.NOT_REPLAYABLE for r in results)
    # Each says what it lacks, and only that: the non-cancellable scenario needs no IN_PROGRESS task.
    assert "--task IN_PROGRESS=" in by_requirement["BEH-CANCEL"].detail
    assert "--task IN_PROGRESS=" in by_requirement["BEH-STATEFUL"].detail
    lacking = by_requirement["BEH-NOT-CANCELLABLE"].detail
    assert "non-cancellable" in lacking and "IN_PROGRESS" not in lacking and "--task STATUS=<id>" in lacking
    assert not server.request_log

"""Hostile targets: the suite must end, in bounded time and memory, with a verdict or a clear exit 3.

Protocol-level misbehaviour comes from raw-socket stubs written here (an HTTP library would refuse to
send most of it); body-level misbehaviour comes from the reference server's hostile defects. Every
run goes through the real command line in a child process, so a hang, a traceback or a memory blow-up
shows exactly as a user would see it. Time limits below are generous "does not hang" bounds, not
benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.options import DEFAULT_CONCURRENCY

# Kills a wedged child so the test run itself cannot hang (a bound, never a measurement).
HARD_KILL = 120.0
TOKEN = "hostile-test-token-5f1a"
VALID_404 = b'{"errorCode": "TA_TASK_NOT_FOUND", "message": "Task not found"}'
HUGE_BYTES = 30 * 1024 * 1024

Behaviour = Callable[[socket.socket, bytes, threading.Event], None]


# -- raw-socket stubs -------------------------------------------------------------------------------

@dataclass
class RawStub:
    """A TCP server on 127.0.0.1 whose `behaviour` writes whatever bytes it likes for each request."""

    behaviour: Behaviour
    heads: list[bytes] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _server: socketserver.ThreadingTCPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> RawStub:
        stub = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                # One request per connection: read its head (DELETEs and GETs carry no body).
                try:
                    head = _read_head(conn)
                except OSError:
                    return
                if not head:
                    return
                with stub._lock:
                    stub.heads.append(head)
                # OSError: the client gave up first, as it should.
                with contextlib.suppress(OSError):
                    stub.behaviour(conn, head, stub.stop)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def requests_seen(self) -> list[bytes]:
        with self._lock:
            return list(self.heads)


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def http_answer(status: int, body: bytes, *, content_type: str = "application/json",
                length: int | None = None, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


@pytest.fixture
def raw_stub() -> Iterator[Callable[[Behaviour], RawStub]]:
    stubs: list[RawStub] = []

    def start(behaviour: Behaviour) -> RawStub:
        stub = RawStub(behaviour).start()
        stubs.append(stub)
        return stub

    yield start
    for stub in stubs:
        stub.close()


# -- behaviours -------------------------------------------------------------------------------------

def silent(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    stop.wait(30)


def slow_answer(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    # Longer than the suite's --timeout 1, then a perfectly good answer nobody waits for.
    if not stop.wait(2.5):
        conn.sendall(http_answer(404, VALID_404))


def dribble(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    # Each byte arrives well inside the read timeout, so only a whole-body deadline ends this.
    body = VALID_404
    conn.sendall(http_answer(404, b"", length=len(body)))
    for byte in body:
        if stop.wait(0.4):
            return
        conn.sendall(bytes([byte]))


def reset(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    # SO_LINGER with a zero timeout turns close() into a TCP RST.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def not_http(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 this is not HTTP\r\n\r\n")


def close_mid_body(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    conn.sendall(http_answer(404, VALID_404[:20], length=1000))


def huge_body(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    # A JSON string that never ends within the 30 MB the headers announce.
    conn.sendall(http_answer(404, b'{"message": "', length=HUGE_BYTES))
    block = b"a" * (1024 * 1024)
    for _ in range(HUGE_BYTES // len(block)):
        if stop.is_set():
            return
        conn.sendall(block)


def small_body(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    conn.sendall(http_answer(404, VALID_404))


def alternating(bad: Behaviour) -> Behaviour:
    """Misbehave on one request in three of each method, so the run reaches a verdict about the
    misbehaviour.

    The circuit breaker counts failures per method (a dead DELETE beside live GETs is a target
    that stopped answering). Counted over all requests, one in three could still fall on three
    GETs in a row now and then, as the scenarios' reads and the schema phase's cancels interleave
    differently from run to run; counted per method, each operation answers two requests in three."""
    counters: dict[bytes, int] = {}
    lock = threading.Lock()

    def behave(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
        method = head.split(b" ", 1)[0]
        with lock:
            n = counters[method] = counters.get(method, -1) + 1
        (bad if n % 3 == 0 else small_body)(conn, head, stop)

    return behave


def redirect_to(location_base: str) -> Behaviour:
    def behave(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
        path = head.split(b" ", 2)[1].decode("latin-1")
        conn.sendall(http_answer(302, b"", extra=f"Location: {location_base}{path}\r\n"))

    return behave


# -- running the CLI ----------------------------------------------------------------------------------

@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report_dir: Path

    def findings(self) -> dict[str, Any]:
        return dict(json.loads((self.report_dir / "findings.json").read_text(encoding="utf-8")))

    def outcome(self, requirement: str) -> str:
        return next(str(r["outcome"]) for r in self.findings()["requirements"] if r["id"] == requirement)

    def violations(self, requirement: str) -> list[str]:
        document = self.findings()
        return [
            str(v["message"])
            for r in document["requirements"] if r["id"] == requirement
            for f in r["findings"] for v in f["violations"]
        ]


def run_cli(tmp_path: Path, *args: str, name: str = "r") -> CliRun:
    report_dir = tmp_path / name
    command = [sys.executable, "-m", "conformance", "run", "--seed", "1", "-q",
               "--report-dir", str(report_dir), *args]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=HARD_KILL, cwd=tmp_path)
    return CliRun(result.returncode, result.stdout, result.stderr, time.monotonic() - started, report_dir)


def against(stub: RawStub, tmp_path: Path, *extra: str) -> CliRun:
    return run_cli(tmp_path, "--base-url", stub.base_url, "--token", TOKEN, "--timeout", "1",
                   "--max-examples", "10", *extra)


def assert_clean_end(run: CliRun, *, codes: tuple[int, ...] = (1, 3)) -> None:
    """The common promise: bounded time, an expected exit code, no traceback, reports written."""
    detail = f"exit {run.returncode} after {run.seconds:.1f} s\nstdout: {run.stdout}\nstderr: {run.stderr}"
    assert run.returncode in codes, detail
    # No wall-clock bound here (a busy machine must not fail a test): subprocess.run's hard
    # timeout catches a hung suite; how quickly a run gives up is asserted as a request count.
    assert "Traceback" not in run.stdout + run.stderr, detail
    assert TOKEN not in run.stdout + run.stderr, detail
    assert (run.report_dir / "findings.json").is_file(), detail
    if run.returncode == 3:
        errors = [line for line in run.stderr.splitlines() if line.startswith("sddc-conformance: error:")]
        assert len(errors) == 1, detail
        assert "stopped answering" in errors[0] or "unreachable" in errors[0] or "cannot reach" in errors[0]
        # The run's partial result says why it has no verdict.
        assert any("run stopped" in note for note in run.findings()["notes"]), detail


# -- protocol-level misbehaviour -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (silent, "no answer within 1 s"),
        (slow_answer, "no answer within 1 s"),
        (dribble, "the body did not arrive within"),
        (reset, "reset"),
        (not_http, "not HTTP"),
        (close_mid_body, "closed in the middle of the body"),
    ],
    ids=["never-answers", "answers-slowly", "dribbles-body", "resets", "not-http", "closes-mid-body"],
)
def test_target_that_stops_answering_ends_in_exit_3(
    raw_stub: Callable[[Behaviour], RawStub], tmp_path: Path, behaviour: Behaviour, error: str
) -> None:
    run = against(raw_stub(behaviour), tmp_path)
    assert_clean_end(run, codes=(3,))
    assert error in run.stderr


# Two whole runs, one failure on the connection and one in the body: every misbehaviour above
# already ends a run through the command line with its own words, and a request that never
# answers is a SRV-ANSWERS finding in tests/test_target.py (a 0.3 s timeout, no whole run).
@pytest.mark.slow
@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (reset, "reset"),
        (close_mid_body, "closed in the middle of the body"),
    ],
    ids=["resets", "closes-mid-body"],
)
def test_intermittent_misbehaviour_is_a_finding(
    raw_stub: Callable[[Behaviour], RawStub], tmp_path: Path, behaviour: Behaviour, error: str
) -> None:
    # Good answers in between keep the run alive, so every failed request is judged, not fatal.
    run = against(raw_stub(alternating(behaviour)), tmp_path)
    assert_clean_end(run, codes=(1,))
    assert run.outcome("SRV-ANSWERS") == "FAIL"
    assert any(error in message for message in run.violations("SRV-ANSWERS")), run.violations("SRV-ANSWERS")


def test_unreachable_from_the_first_request_ends_within_seconds(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    run = run_cli(tmp_path, "--base-url", f"http://127.0.0.1:{port}", "--token", TOKEN, "--timeout", "1")
    assert_clean_end(run, codes=(3,))
    assert "connection refused" in run.stderr
    # It gives up after a handful of attempts, not after the whole run's budget.
    assert run.findings()["requests_sent"] <= 5, run.findings()["requests_sent"]


# -- bodies ------------------------------------------------------------------------------------------------

_PEAK_RSS = textwrap.dedent(
    """
    import resource, subprocess, sys
    subprocess.run(sys.argv[1:], capture_output=True, timeout={timeout})
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)


def peak_rss_mib(tmp_path: Path, stub: RawStub, name: str) -> float:
    """Peak RSS of one CLI run, measured from a fresh parent so no earlier child skews the maximum."""
    command = [sys.executable, "-m", "conformance", "run", "--seed", "1", "-q", "--base-url", stub.base_url,
               "--token", TOKEN, "--timeout", "5", "--max-examples", "10", "--report-dir", str(tmp_path / name)]
    probe = [sys.executable, "-c", _PEAK_RSS.format(timeout=HARD_KILL), *command]
    out = subprocess.run(probe, capture_output=True, text=True, timeout=HARD_KILL + 10, check=True, cwd=tmp_path)
    return int(out.stdout.strip()) / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units differ by platform")
def test_huge_body_keeps_memory_bounded(raw_stub: Callable[[Behaviour], RawStub], tmp_path: Path) -> None:
    small = raw_stub(small_body)
    # The first run in a directory also pays Hypothesis' one-off scan of local source for constants
    # (cached in ./.hypothesis, a couple of hundred MB at peak); warm it so both runs compare alike.
    peak_rss_mib(tmp_path, small, "warm-up")
    baseline = peak_rss_mib(tmp_path, small, "small")
    huge = peak_rss_mib(tmp_path, raw_stub(huge_body), "huge")
    # The suite reads at most TargetConfig.max_body_bytes (16 MiB) of each body and keeps a
    # handful of failing examples (under 200 MiB); besides, a body is in hand in each thread that
    # sends: up to --concurrency each in the schema phase's pool, in the scenarios' reads side by
    # side (the scenario lane and the state machine run beside the pool), and BEH-RACE's cancels.
    # 30 MB on every answer must not add more than that: a run that kept every answer it was sent
    # (about 500) would hold gigabytes.
    in_flight = 3 * DEFAULT_CONCURRENCY * 16
    assert huge - baseline < 200 + in_flight, (baseline, huge)
    messages = json.loads((tmp_path / "huge" / "findings.json").read_text())["requirements"]
    body = next(r for r in messages if r["id"] == "SCH-ERROR-BODY")
    assert body["outcome"] == "FAIL"
    assert "larger than the suite reads" in json.dumps(body["findings"])


# Through the command line, the bodies whose reports are at risk: 10,000 levels of JSON and bytes
# that are not UTF-8. Every hostile entry's verdict and evidence (a 307/302 not followed, 30 MB,
# nesting over the limit, not JSON) is judged in process by the detection matrix
# (tests/test_detection_matrix.py), and a 30 MB body through the command line above.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("defect", "requirement", "evidence"),
    [
        ("deep-valid-nesting-10k", "SCH-ERROR-BODY", "over the suite's limit"),
        ("invalid-utf8-error", "SCH-ERROR-BODY", "not valid UTF-8"),
    ],
)
def test_hostile_reference_defect_is_a_finding(tmp_path: Path, defect: str, requirement: str, evidence: str) -> None:
    run = run_cli(tmp_path, "--defect", defect, "--max-examples", "25")
    assert_clean_end(run, codes=(1,))
    assert run.outcome(requirement) == "FAIL"
    assert any(evidence in message for message in run.violations(requirement)), run.violations(requirement)


@pytest.mark.slow
def test_slow_reference_server_ends_promptly(tmp_path: Path) -> None:
    # Every DELETE of slow-responses outlasts --timeout while its GETs answer at once: the GETs
    # between the DELETEs must not keep a dead operation alive for dozens of timeouts.
    run = run_cli(tmp_path, "--defect", "slow-responses", "--timeout", "2")
    assert_clean_end(run, codes=(3,))
    assert "no answer within 2 s" in run.stderr
    # The circuit breaker trips after a few timed-out DELETEs; fast GETs in between do not reset it.
    deletes = [
        f for r in run.findings()["requirements"] for f in r["findings"]
        if (f.get("exchange") or {}).get("request", {}).get("method") == "DELETE"
    ]
    assert run.findings()["requests_sent"] < 30, run.findings()["requests_sent"]
    assert len(deletes) <= 10


# -- redirects -------------------------------------------------------------------------------------------

def test_redirect_to_another_host_carries_no_credentials(
    raw_stub: Callable[[Behaviour], RawStub], tmp_path: Path
) -> None:
    elsewhere = raw_stub(small_body)
    redirecting = raw_stub(redirect_to(elsewhere.base_url))
    run = against(redirecting, tmp_path)
    assert_clean_end(run, codes=(1,))
    assert redirecting.requests_seen(), "the suite never reached the redirecting target"
    # The redirecting target did get the token (AUTH-REQUIRED also sends DELETEs without one) ...
    assert any(TOKEN.encode() in head for head in redirecting.requests_seen())
    # ... and none of it, nor anything else, reached the host it pointed to.
    assert elsewhere.requests_seen() == []
    assert run.outcome("SCH-STATUS") == "FAIL"
    assert any(f"redirect to {elsewhere.base_url}" in m for m in run.violations("SCH-STATUS"))

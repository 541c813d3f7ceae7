"""The whole-request deadline (--timeout): connect, send, headers and body, however slowly bytes trickle.

The watchdog is tested on a socket pair; the Target against a raw-socket server on 127.0.0.1 that
trickles one byte every 0.2 s (well inside any read timeout); one command-line run shows a
trickling target ends in exit 3 after a few requests. Counts and outcomes are asserted, never
wall time.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.engine import deadline
from conformance.engine.deadline import Watchdog
from conformance.engine.target import Target, TargetConfig

VALID_404 = b'{"errorCode": "TA_TASK_NOT_FOUND", "message": "Task not found"}'
PAGE = json.dumps({"elements": [], "pageMetadata": {"pageNumber": 0, "pageSize": 1, "totalElements": 0,
                                                    "totalPages": 0}}).encode()
DRIP = 0.2


def answer(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


Behaviour = Callable[[socket.socket, bytes, threading.Event], None]


def trickle(data: bytes) -> Behaviour:
    def behave(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
        for byte in data:
            if stop.wait(DRIP):
                return
            conn.sendall(bytes([byte]))

    return behave


def trickle_headers(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    trickle(answer(404, VALID_404))(conn, head, stop)


def trickle_body(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    whole = answer(404, VALID_404)
    split = whole.index(b"\r\n\r\n") + 4
    conn.sendall(whole[:split])
    trickle(whole[split:])(conn, head, stop)


def slow_but_in_time(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    # A few bytes, 0.2 s apart, well inside a 5 s deadline: judged like any answer.
    whole = answer(404, VALID_404)
    for piece in (whole[:10], whole[10:50], whole[50:]):
        if stop.wait(DRIP):
            return
        conn.sendall(piece)


def reads_answer_deletes_trickle(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    if head.startswith(b"GET"):
        conn.sendall(answer(200, PAGE) if b"/v1/tasks?" in head.split(b"\r\n", 1)[0] else answer(404, VALID_404))
    else:
        trickle_headers(conn, head, stop)


class TrickleServer:
    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.stop = threading.Event()
        self.heads: list[bytes] = []
        self.scheme = "https" if tls else "http"
        stop, heads = self.stop, self.heads

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                if tls is not None:
                    try:
                        conn = tls.wrap_socket(conn, server_side=True)
                    except OSError:
                        return
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        piece = conn.recv(65536)
                        if not piece:
                            return
                        data += piece
                    heads.append(data)
                    behaviour(conn, data, stop)
                except OSError:
                    pass  # the client cut the connection at its deadline

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickling() -> Iterator[Callable[[Behaviour], TrickleServer]]:
    servers: list[TrickleServer] = []

    def start(behaviour: Behaviour) -> TrickleServer:
        servers.append(TrickleServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# -- the watchdog -------------------------------------------------------------------------------------

class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


def test_the_watchdog_cuts_a_blocked_read_at_the_deadline() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30)  # only a guard: the cut must come long before
        with Watchdog().watching(0.2) as watch:
            watch.conn = _Conn(ours)
            got = ours.recv(10)  # the other end sends nothing: only the cut wakes this
        assert watch.fired and got == b""


def test_a_request_done_in_time_is_never_cut() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        dog = Watchdog()
        with dog.watching(0.05) as watch:
            watch.conn = _Conn(ours)
        with dog.watching(0.3) as later:  # outlives the first deadline
            theirs.sendall(b"x")
            threading.Event().wait(0.15)
            assert ours.recv(1) == b"x"
        assert not watch.fired and not later.fired
        theirs.sendall(b"y")
        assert ours.recv(1) == b"y"  # the socket still works


def test_a_watch_before_any_connection_fires_without_cutting_anything() -> None:
    with Watchdog().watching(0.0) as watch:
        threading.Event().wait(0.1)
    assert watch.fired and watch.conn is None


def test_the_thread_goes_away_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deadline, "IDLE_SECONDS", 0.05)
    dog = Watchdog()
    with dog.watching(5.0):
        threading.Event().wait(0.2)  # the thread is asleep until the 5 s deadline by now
    # Within 2 s, not the 5 s deadline: a finished request wakes the thread, which must not sleep
    # out a deadline that no longer counts before it can go idle.
    for _ in range(40):
        if not dog._running:
            break
        threading.Event().wait(0.05)
    assert not dog._running
    with dog.watching(0.0) as watch:  # and comes back on demand
        threading.Event().wait(0.1)
    assert watch.fired


# -- the Target --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("behaviour", "error"), [
    (trickle_headers, "no answer within 1 s"),
    (trickle_body, "the body did not arrive within 1 s"),
], ids=["headers", "body"])
def test_a_trickle_is_cut_at_the_deadline(trickling: Callable[[Behaviour], TrickleServer],
                                          behaviour: Behaviour, error: str) -> None:
    # The answer is about 150 bytes: at 0.2 s a byte it would take 30 s; each byte is well within
    # the 1 s read timeout, so only the whole-request deadline ends it.
    server = trickling(behaviour)
    exchange = Target(TargetConfig(base_url=server.base_url, token="t", timeout=1.0)).cancel("x", purpose="test")
    assert exchange.response is None and exchange.error == error


def test_a_trickle_over_tls_is_cut_too(tmp_path: Path) -> None:
    # Appliances serve HTTPS: the cut goes to the socket under the TLS layer, and the read blocked
    # in it wakes the same way.
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = TrickleServer(trickle_body, tls=context)
    try:
        target = Target(TargetConfig(base_url=server.base_url, token="t", timeout=1.0, verify=str(bundle)))
        exchange = target.cancel("x", purpose="test")
    finally:
        server.close()
    assert exchange.response is None and exchange.error == "the body did not arrive within 1 s"


def test_a_slow_answer_within_the_deadline_is_judged(trickling: Callable[[Behaviour], TrickleServer]) -> None:
    server = trickling(slow_but_in_time)
    exchange = Target(TargetConfig(base_url=server.base_url, token="t", timeout=5.0)).cancel("x", purpose="test")
    assert exchange.error is None and exchange.response is not None
    assert exchange.response.status == 404 and exchange.response.body == VALID_404


def test_a_login_that_trickles_is_cut_too(trickling: Callable[[Behaviour], TrickleServer]) -> None:
    from conformance.errors import TargetUnreachable

    server = trickling(trickle_headers)
    with pytest.raises(TargetUnreachable, match="no answer within 1 s"):
        Target(TargetConfig(base_url=server.base_url, username="u", password="p", timeout=1.0)).login()


# -- one run ----------------------------------------------------------------------------------------

def test_a_trickling_target_stops_the_run_after_a_few_requests(
        trickling: Callable[[Behaviour], TrickleServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main

    server = trickling(reads_answer_deletes_trickle)
    report = tmp_path / "r"
    with pytest.raises(SystemExit) as ended:
        main(["run", "--quiet", "--base-url", server.base_url, "--token", "t0k3n", "--timeout", "1", "--profile",
              "schema", "--max-examples", "10", "--seed", "1", "--report-dir", str(report)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert ended.value.code == 3 and len(lines) == 1, out + err
    assert "stopped answering" in lines[0] and "no answer within 1 s" in lines[0]
    findings = json.loads((report / "findings.json").read_text(encoding="utf-8"))
    deletes = [h for h in server.heads if h.startswith(b"DELETE")]
    # The DELETEs in flight when the breaker tripped (--concurrency 8) and little more.
    assert 3 <= len(deletes) <= 12 and findings["requests_sent"] <= 20, (len(deletes), findings["requests_sent"])
    assert any("run stopped" in note for note in findings["notes"])


def test_once_the_target_is_declared_stopped_the_requests_under_way_are_cut(
        trickling: Callable[[Behaviour], TrickleServer]) -> None:
    # Two requests trickle an answer that would complete, within their 30 s deadline, in about
    # 20 s. Three failures sent before them stop the run (the third fails once both are under
    # way), and the two end then, with the run's reason, instead of being waited out for answers
    # that no longer count.
    from conformance.errors import TargetStoppedAnswering

    arrived = threading.Semaphore(0)
    let_fail = threading.Event()

    def behave(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
        if b"/hang" in head:
            arrived.release()
            trickle(answer(404, b"{}"))(conn, head, stop)
        elif b"/slow-fail" in head:
            arrived.release()
            let_fail.wait(30)
        # anything else (and then slow-fail): closed without an answer

    server = trickling(behave)
    target = Target(TargetConfig(base_url=server.base_url, token="t", timeout=30.0))
    assert target.cancel("fail-1", purpose="test").error is not None
    assert target.cancel("fail-2", purpose="test").error is not None
    outcomes: list[BaseException | None] = []

    def send(task: str) -> None:
        try:
            target.cancel(task, purpose="test")
            outcomes.append(None)
        except TargetStoppedAnswering as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=send, args=(task,)) for task in ("slow-fail", "hang0", "hang1")]
    threads[0].start()
    assert arrived.acquire(timeout=30)
    for thread in threads[1:]:
        thread.start()
    assert arrived.acquire(timeout=30) and arrived.acquire(timeout=30)
    let_fail.set()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 3 and all(isinstance(o, TargetStoppedAnswering) for o in outcomes), outcomes
    assert all("3 requests in a row failed" in str(o) for o in outcomes)

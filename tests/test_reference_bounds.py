"""The reference server's config knobs and bounds: prefix, latency, servlet hygiene, caps, rate limits.

Real HTTP over 127.0.0.1 against ReferenceServer in-process; time-dependent behaviour runs on a
manual clock, and nothing here asserts elapsed time.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from conformance.reference import PortInUse, ReferenceConfig, ReferenceServer, create_app
from conformance.reference.app import json_depth, servlet_firewall_status
from conformance.reference.server import _write_private_json, is_loopback, serve_forever

PASSWORD = "reference-bounds-password"
TIMEOUT = 10.0
CREDENTIALS = {"username": "admin@local", "password": PASSWORD}


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def serving(clock: ManualClock | None = None, **config: Any) -> Iterator[ReferenceServer]:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    with ReferenceServer(ReferenceConfig(password=PASSWORD, **config), **kwargs) as server:
        yield server


def token(base_url: str) -> dict[str, str]:
    response = requests.post(base_url + "/v1/tokens", json=CREDENTIALS, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return {"Authorization": "Bearer " + response.json()["accessToken"]}


def assert_error(response: requests.Response | tuple[int, str, bytes], status: int) -> dict[str, Any]:
    if isinstance(response, tuple):
        got, media, content = response
    else:
        got, media, content = response.status_code, response.headers.get("Content-Type", ""), response.content
    assert got == status, content[:300]
    assert media.startswith("application/json")
    body = json.loads(content)
    assert isinstance(body["message"], str) and isinstance(body["errorCode"], str)
    return body


def raw_request(server: ReferenceServer, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, str, bytes]:
    """One request with ``path`` sent byte for byte (no client-side normalisation)."""
    assert server.port is not None
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def socket_request(server: ReferenceServer, head: bytes) -> bytes:
    """Send raw bytes (for request targets http.client refuses to send) and read the status line."""
    assert server.port is not None
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        return sock.recv(65536)


# -- config validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"latency_ms": -1}, {"latency_ms": 1.5}, {"latency_ms": True},
    {"path_prefix": "sddc-api"}, {"path_prefix": "/sddc-api/"}, {"path_prefix": "/a b"}, {"path_prefix": "/.."},
    {"path_prefix": "/x?y"}, {"path_prefix": "/"},
    {"settle_seconds": -0.1}, {"settle_seconds": float("inf")}, {"settle_seconds": float("nan")},
    {"backpressure_rate": 0}, {"backpressure_burst": 0},
    {"request_log_size": 0}, {"max_tokens": 0}, {"max_tasks": 0}, {"max_body_bytes": 0},
    {"max_json_depth": 0}, {"login_rate": -1.0}, {"login_burst": 0},
    {"max_tasks": 10},  # smaller than the default seed
])
def test_bad_config_values_raise_value_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReferenceConfig(**bad)


def test_config_defaults() -> None:
    config = ReferenceConfig()
    assert (config.latency_ms, config.path_prefix, config.settle_seconds) == (0, "", 1.0)
    assert (config.backpressure_rate, config.backpressure_burst) == (40.0, 50)
    assert (config.request_log_size, config.max_tokens, config.max_tasks) == (10_000, 1000, 10_000)
    assert (config.max_body_bytes, config.max_json_depth) == (64 * 1024, 64)
    assert (config.login_rate, config.login_burst) == (10.0, 20)
    assert config.defects == frozenset()


# -- path prefix and latency ---------------------------------------------------------------------------

def test_path_prefix_mounts_every_route() -> None:
    with serving(path_prefix="/sddc-api") as server:
        assert server.base_url.endswith("/sddc-api")
        assert server.state_document()["base_url"] == server.base_url
        headers = token(server.base_url)
        task_id = server.store.ids_by_status()["IN_PROGRESS"][0]
        assert requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code == 200
        cancel = requests.delete(f"{server.base_url}/v1/tasks/{task_id}", headers=headers, timeout=TIMEOUT)
        assert cancel.status_code == 200
        record = server.request_log[-1]
        assert (record.path, record.task_id, record.task_status_before) == (
            f"/sddc-api/v1/tasks/{task_id}", task_id, "IN_PROGRESS")
        root = server.base_url.removesuffix("/sddc-api")
        for outside in ("/v1/tasks", f"/v1/tasks/{task_id}", "/sddc-api", "/sddc-apix/v1/tasks",
                        "/sddc-api-other/v1/tasks", "/v1/tokens"):
            assert_error(requests.get(root + outside, headers=headers, timeout=TIMEOUT), 404)
        assert_error(requests.post(root + "/v1/tokens", json=CREDENTIALS, timeout=TIMEOUT), 404)
        assert_error(raw_request(server, "GET", "/sddc%2Dapi/v1/tasks", headers), 404)
        assert server.store.status_of(task_id) == "CANCELLED"


def test_path_prefix_keeps_redirects_inside_the_prefix() -> None:
    with serving(path_prefix="/api/sddc", defects=frozenset({"redirect-cancel"})) as server:
        headers = token(server.base_url)
        task_id = server.store.ids_by_status()["IN_PROGRESS"][0]
        response = requests.delete(f"{server.base_url}/v1/tasks/{task_id}", headers=headers, timeout=TIMEOUT,
                                   allow_redirects=False)
        assert response.headers["Location"] == f"{server.base_url}/v1/tasks/{task_id}/"


def test_latency_delays_answers_concurrently() -> None:
    with serving(latency_ms=300) as server:
        headers = token(server.base_url)
        # Delayed: a client with a much shorter timeout gives up.
        with pytest.raises(requests.Timeout):
            requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=0.05)
        server.service.peak_in_flight = 0
        barrier = threading.Barrier(6)
        statuses: list[int] = []

        def fetch() -> None:
            barrier.wait()
            statuses.append(requests.get(server.base_url + "/v1/tasks", headers=headers,
                                         timeout=TIMEOUT).status_code)

        threads = [threading.Thread(target=fetch) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * 6
        # Waiting asynchronously lets the requests overlap instead of queueing one behind another.
        assert server.service.peak_in_flight >= 2


def test_no_latency_by_default_counts_in_flight() -> None:
    with serving() as server:
        requests.get(server.base_url + "/v1/tasks", timeout=TIMEOUT)
        # (in_flight itself may still read 1 here: the answer leaves before the middleware unwinds.)
        assert server.service.peak_in_flight >= 1


# -- servlet URL hygiene -------------------------------------------------------------------------------

REFUSED = ["a%2Fb", "a%2fb", "a%5Cb", "a%5cb", "a%25b", "a%2Eb", "%2e%2e", "a;b", "a%3Bb", "a%3bjsessionid=1",
           "a%00b", "a%1Fb", "a%1fb", "a%7Fb", "a%0A", "x//y", "/x", "x/./y", "x/../y", "x/.", "..", ".",
           "a%", "a%4", "a%G0", "a%zz", "x\\y"]
PASSED = ["a%20b", "%C3%BC%E2%98%83", "a!b", "a$b", "a&b", "a'b", "a(b)", "a*b", "a+b", "a,b", "a=b", "a:b",
          "a@b", "a~b", "a_b", "a.b", "...", "a%41", "a%2Db", "x/y"]


@pytest.mark.parametrize("task_id", REFUSED)
def test_firewall_rule_refuses(task_id: str) -> None:
    assert servlet_firewall_status(b"/v1/tasks/" + task_id.encode()) == 400


@pytest.mark.parametrize("task_id", PASSED)
def test_firewall_rule_passes(task_id: str) -> None:
    assert servlet_firewall_status(b"/v1/tasks/" + task_id.encode()) is None


def test_firewall_rule_length_and_scope() -> None:
    assert servlet_firewall_status(b"/v1/tasks/" + b"x" * 4086) is None  # exactly 4096 bytes
    assert servlet_firewall_status(b"/v1/tasks/" + b"x" * 4087) == 414
    assert servlet_firewall_status(b"/v1/tokens" + b"x" * 5000) == 414
    assert servlet_firewall_status(b"/v1/tasks") is None
    assert servlet_firewall_status(b"/v1/other/a%2Fb") is None
    for control in range(0x20):
        assert servlet_firewall_status(b"/v1/tasks/a" + bytes([control])) == 400
    assert servlet_firewall_status(b"/v1/tasks/a\x7f") == 400


@pytest.fixture(scope="module")
def hygienic() -> Iterator[tuple[ReferenceServer, dict[str, str]]]:
    with serving(defects=frozenset({"servlet-url-hygiene"})) as server:
        yield server, token(server.base_url)


@pytest.mark.parametrize("task_id", [t for t in REFUSED if t != "x\\y"] + ["x\\y"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_servlet_hygiene_answers_400_html(hygienic: tuple[ReferenceServer, dict[str, str]], task_id: str,
                                          method: str) -> None:
    server, headers = hygienic
    before = server.store.ids_by_status()
    status, media, body = raw_request(server, method, "/v1/tasks/" + task_id, headers)
    assert (status, media.split(";")[0]) == (400, "text/html") and body.startswith(b"<!doctype html>")
    assert server.request_log[-1].status_code == 400
    assert server.store.ids_by_status() == before


def test_servlet_hygiene_refuses_raw_control_characters(hygienic: tuple[ReferenceServer, dict[str, str]]) -> None:
    server, _ = hygienic
    # http.client refuses to send these, and uvicorn itself may refuse some: either way never a 2xx/404.
    answer = socket_request(server, b"DELETE /v1/tasks/a\x7fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


def test_servlet_hygiene_414_for_long_paths(hygienic: tuple[ReferenceServer, dict[str, str]]) -> None:
    server, headers = hygienic
    status, media, _ = raw_request(server, "DELETE", "/v1/tasks/" + "y" * 5000, headers)
    assert (status, media.split(";")[0]) == (414, "text/html")


@pytest.mark.parametrize("task_id", PASSED)
def test_servlet_hygiene_lets_the_rest_through(hygienic: tuple[ReferenceServer, dict[str, str]],
                                               task_id: str) -> None:
    server, headers = hygienic
    body = assert_error(raw_request(server, "DELETE", "/v1/tasks/" + task_id, headers), 404)
    assert body["errorCode"] == "TA_TASK_NOT_FOUND"


def test_servlet_hygiene_answers_before_auth(hygienic: tuple[ReferenceServer, dict[str, str]]) -> None:
    server, _ = hygienic
    assert raw_request(server, "DELETE", "/v1/tasks/a%2Fb")[0] == 400
    assert_error(raw_request(server, "DELETE", "/v1/tasks/a%20b"), 401)


def test_faithful_server_has_no_firewall() -> None:
    with serving() as server:
        headers = token(server.base_url)
        for task_id in ("a%2Fb", "a;b", "a%25b", "y" * 5000):
            assert_error(raw_request(server, "DELETE", "/v1/tasks/" + task_id, headers), 404)


# -- backpressure ----------------------------------------------------------------------------------------

def test_backpressure_applies_to_every_route_and_refills() -> None:
    clock = ManualClock()
    with serving(clock, defects=frozenset({"backpressure-429"}), backpressure_rate=2.0, backpressure_burst=3,
                 login_burst=100) as server:
        headers = token(server.base_url)  # 1 of 3
        assert requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code == 200
        assert requests.get(server.base_url + "/nope", timeout=TIMEOUT).status_code == 401
        for method, path in (("GET", "/v1/tasks"), ("POST", "/v1/tokens"), ("DELETE", "/v1/tasks/x"),
                             ("GET", "/reference/requests")):
            response = requests.request(method, server.base_url + path, headers=headers, timeout=TIMEOUT)
            assert response.status_code == 429, path
            assert response.headers["Retry-After"] == "1" and response.text
        clock.advance(0.5)  # one token at 2 a second
        assert requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code == 200
        assert requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code == 429
        clock.advance(1000)  # refills only up to the burst
        statuses = [requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert [r.status_code for r in server.request_log].count(429) == 6


def test_no_backpressure_by_default() -> None:
    with serving(backpressure_rate=1.0, backpressure_burst=1) as server:
        headers = token(server.base_url)
        assert {requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code
                for _ in range(5)} == {200}


# -- request log ring and paging -------------------------------------------------------------------------

def test_request_log_is_a_ring_buffer_and_pages() -> None:
    with serving(request_log_size=5) as server:
        headers = token(server.base_url)
        for index in range(9):
            requests.get(f"{server.base_url}/v1/tasks/n{index}", headers=headers, timeout=TIMEOUT)
        assert len(server.request_log) == 5
        assert [r.task_id for r in server.request_log] == [f"n{i}" for i in range(4, 9)]
        page = requests.get(server.base_url + "/reference/requests", params={"limit": 2}, headers=headers,
                            timeout=TIMEOUT).json()
        assert (page["total"], page["offset"], page["limit"], page["next_offset"]) == (5, 0, 2, 2)
        assert (page["capacity"], page["evicted"]) == (5, 5)
        # The page request itself is logged once it has been answered.
        assert [r["task_id"] for r in page["records"]] == ["n4", "n5"]
        assert server.request_log[-1].path == "/reference/requests"
        last = requests.get(server.base_url + "/reference/requests", params={"offset": 4}, headers=headers,
                            timeout=TIMEOUT).json()
        assert last["next_offset"] is None and len(last["records"]) == 1
        for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"offset": "x"}):
            assert_error(requests.get(server.base_url + "/reference/requests", params=bad, headers=headers,
                                      timeout=TIMEOUT), 400)


@pytest.mark.slow
def test_default_requests_page_is_capped_at_1000() -> None:
    with serving(request_log_size=1500) as server:
        headers = token(server.base_url)
        with requests.Session() as session:
            for _ in range(1200):
                session.get(server.base_url + "/v1/nothing", timeout=TIMEOUT)
        page = requests.get(server.base_url + "/reference/requests", headers=headers, timeout=TIMEOUT).json()
        assert (len(page["records"]), page["limit"], page["next_offset"]) == (1000, 1000, 1000)
        assert page["total"] == 1201


def test_unauthenticated_requests_are_logged_within_the_ring() -> None:
    with serving(request_log_size=10) as server:
        with requests.Session() as session:
            for index in range(50):
                session.delete(f"{server.base_url}/v1/tasks/{'z' * 100}{index}", timeout=TIMEOUT)
        assert len(server.request_log) == 10
        assert all(not r.authenticated and r.status_code == 401 for r in server.request_log)


def test_logged_paths_are_clipped() -> None:
    with serving() as server:
        requests.get(server.base_url + "/v1/tasks/" + "p" * 20_000, timeout=TIMEOUT)
        record = server.request_log[-1]
        assert len(record.path) < 8300 and record.path.endswith("...[cut]")
        assert record.task_id is not None and len(record.task_id) < 8300


# -- tokens ------------------------------------------------------------------------------------------------

def test_token_store_is_capped_and_evicts_the_oldest() -> None:
    with serving(max_tokens=3, login_burst=100) as server:
        first = token(server.base_url)
        later = [token(server.base_url) for _ in range(3)]
        assert len(server.service.tokens) == 3 and server.service.tokens.refresh_count == 3
        assert_error(requests.get(server.base_url + "/v1/tasks", headers=first, timeout=TIMEOUT), 401)
        for headers in later:
            assert requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code == 200


def test_expired_tokens_are_purged() -> None:
    clock = ManualClock()
    with serving(clock, token_ttl=10.0, login_burst=100) as server:
        for _ in range(5):
            token(server.base_url)
        assert len(server.service.tokens) == 5
        clock.advance(10.0)
        fresh = token(server.base_url)
        assert len(server.service.tokens) == 1
        assert requests.get(server.base_url + "/v1/tasks", headers=fresh, timeout=TIMEOUT).status_code == 200


def test_logins_are_rate_limited_per_client() -> None:
    clock = ManualClock()
    with serving(clock, login_rate=1.0, login_burst=3) as server:
        statuses = [requests.post(server.base_url + "/v1/tokens", json=CREDENTIALS, timeout=TIMEOUT)
                    for _ in range(4)]
        assert [r.status_code for r in statuses] == [201, 201, 201, 429]
        body = assert_error(statuses[-1], 429)
        assert body["errorCode"] == "TOO_MANY_LOGINS" and statuses[-1].headers["Retry-After"] == "1"
        # Bad logins count too, and a refused login never reaches the credential check.
        wrong = requests.post(server.base_url + "/v1/tokens", json={**CREDENTIALS, "password": "x"},
                              timeout=TIMEOUT)
        assert wrong.status_code == 429
        clock.advance(1.0)
        assert requests.post(server.base_url + "/v1/tokens", json=CREDENTIALS, timeout=TIMEOUT).status_code == 201
        headers = {"Authorization": "Bearer " + statuses[0].json()["accessToken"]}
        # Other routes are not limited.
        assert {requests.get(server.base_url + "/v1/tasks", headers=headers, timeout=TIMEOUT).status_code
                for _ in range(10)} == {200}


# -- task cap ------------------------------------------------------------------------------------------------

def test_reference_task_creation_stops_at_max_tasks() -> None:
    with serving(max_tasks=30) as server:
        headers = token(server.base_url)
        url = server.base_url + "/reference/tasks"
        assert requests.post(url, json={"count": 10}, headers=headers, timeout=TIMEOUT).status_code == 201
        refused = requests.post(url, json={"count": 1}, headers=headers, timeout=TIMEOUT)
        assert assert_error(refused, 409)["errorCode"] == "TASK_LIMIT_REACHED"
        assert len(server.store) == 30


# -- bodies ----------------------------------------------------------------------------------------------------

LIMIT = 1024


@pytest.fixture(scope="module")
def small_bodies() -> Iterator[ReferenceServer]:
    with serving(max_body_bytes=LIMIT, max_json_depth=8, login_burst=1000) as server:
        yield server


@pytest.mark.parametrize("path", ["/v1/tokens", "/reference/tasks"])
def test_body_over_the_cap_answers_413_up_front(small_bodies: ReferenceServer, path: str) -> None:
    body = json.dumps({**CREDENTIALS, "pad": "x" * LIMIT}).encode()
    response = requests.post(small_bodies.base_url + path, data=body, timeout=TIMEOUT,
                             headers={"Content-Type": "application/json"})
    assert assert_error(response, 413)["errorCode"] == "PAYLOAD_TOO_LARGE"


class CountingBody(io.RawIOBase):
    """A chunked request body of ``total`` bytes that counts how much the client managed to send."""

    def __init__(self, total: int) -> None:
        self.remaining = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        while self.remaining > 0:
            chunk = b" " * min(4096, self.remaining)
            self.remaining -= len(chunk)
            self.sent += len(chunk)
            yield chunk


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/tokens/access-token/refresh"])
def test_streamed_body_over_the_cap_answers_413(small_bodies: ReferenceServer, path: str) -> None:
    method = "POST" if path == "/v1/tokens" else "PATCH"
    body = CountingBody(LIMIT * 4)
    try:
        response = requests.request(method, small_bodies.base_url + path, data=iter(body), timeout=TIMEOUT)
    except requests.ConnectionError:
        pytest.fail("the server should answer 413, not drop the connection")
    assert assert_error(response, 413)["errorCode"] == "PAYLOAD_TOO_LARGE"
    assert small_bodies.request_log[-1].status_code == 413


def test_body_at_the_cap_is_read(small_bodies: ReferenceServer) -> None:
    body = json.dumps(CREDENTIALS).encode()
    body += b" " * (LIMIT - len(body))
    response = requests.post(small_bodies.base_url + "/v1/tokens", data=body, timeout=TIMEOUT)
    assert response.status_code == 201


@pytest.mark.parametrize("body", [
    b'{"username": "admin@local", "password": ' + b"[" * 9 + b"]" * 9 + b"}",
    b"[" * 1000,
    b'{"username": "admin@local", "password": "\\ud800"}',
    b'{"username": "\\udfff", "password": "x"}',
    b'{"username": "admin@local", "password": "\xff\xfe"}',
    b'{"username": "admin@local", "password": "\xed\xa0\x80"}',
    b'{"username": "admin@local", "password": ' + b"1" * 900 + b"}",
    b'{"username": "admin@local",',
    b"\x00",
    b"",
    b'"just a string"',
])
def test_hostile_login_bodies_answer_400_without_traceback(small_bodies: ReferenceServer, body: bytes) -> None:
    caught: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    handler = Catch(level=logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn", "starlette")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        response = requests.post(small_bodies.base_url + "/v1/tokens", data=body, timeout=TIMEOUT,
                                 headers={"Content-Type": "application/json"})
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert_error(response, 400)
    assert small_bodies.request_log[-1].status_code == 400
    assert not [r for r in caught if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("depth", [65, 60_000])
def test_default_limits_refuse_deep_json(depth: int) -> None:
    with serving() as server:
        body = b'{"username": "admin@local", "password": "x", "p": ' + b"[" * depth + b"]" * depth + b"}"
        assert len(body) <= 64 * 1024 or depth == 60_000
        response = requests.post(server.base_url + "/v1/tokens", data=body[:64 * 1024], timeout=TIMEOUT)
        assert assert_error(response, 400)["errorCode"] == "INVALID_JSON"
        at_limit = b'{"username": "admin@local", "password": "' + PASSWORD.encode() + b'", "p": ' + (
            b"[" * 63 + b"]" * 63 + b"}")
        assert requests.post(server.base_url + "/v1/tokens", data=at_limit, timeout=TIMEOUT).status_code == 201


def test_deep_json_at_the_limit_is_parsed(small_bodies: ReferenceServer) -> None:
    body = b'{"username": "admin@local", "password": "' + PASSWORD.encode() + b'", "x": ' + b"[" * 7 + b"]" * 7 + b"}"
    response = requests.post(small_bodies.base_url + "/v1/tokens", data=body, timeout=TIMEOUT)
    assert response.status_code == 201


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]]"}]}') == 3
    assert json_depth("[]") == 1 and json_depth('"x"') == 0


# -- PortInUse, serve_forever warnings, state file ----------------------------------------------------------

def test_port_in_use_on_a_foreign_socket() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"^.*127.0.0.1:{port} is already in use"):
            ReferenceServer(ReferenceConfig(password=PASSWORD), port=port).start()


def test_serve_forever_raises_port_in_use_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    with serving() as first:
        assert first.port is not None
        with pytest.raises(PortInUse) as excinfo:
            serve_forever(ReferenceConfig(password=PASSWORD), host="127.0.0.1", port=first.port, state_file=None,
                          request_log_file=None, on_ready=lambda url: None)
        assert excinfo.value.strerror == f"127.0.0.1:{first.port} is already in use"
    err = capfd.readouterr().err
    assert "ERROR" not in err and "Traceback" not in err


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                ("192.0.2.7", False), ("example.com", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_forever_warns_on_non_loopback_host() -> None:
    warnings = io.StringIO()
    # The warning comes before the bind, so a taken port ends the call right after it: nothing listens beyond
    # 127.0.0.1 in this test. 0.0.0.0 with a port already bound on 0.0.0.0 is refused the same way.
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse):
            serve_forever(ReferenceConfig(password=PASSWORD), host="0.0.0.0", port=port, state_file=None,
                          request_log_file=None, on_ready=lambda url: None, warnings=warnings)
    text = warnings.getvalue()
    assert "0.0.0.0" in text and "plain HTTP" in text and "password" in text and "cancel" in text


def test_serve_forever_is_quiet_on_loopback(capfd: pytest.CaptureFixture[str]) -> None:
    with serving() as first, pytest.raises(PortInUse):
        serve_forever(ReferenceConfig(password=PASSWORD), host="127.0.0.1", port=first.port or 0,
                      state_file=None, request_log_file=None, on_ready=lambda url: None)
    assert "warning" not in capfd.readouterr().err


def test_state_file_is_private_and_never_follows_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    state = tmp_path / "state.json"
    state.symlink_to(victim)
    _write_private_json(str(state), {"password": "pw"})
    assert victim.read_text() == "keep me"
    assert not state.is_symlink() and json.loads(state.read_text()) == {"password": "pw"}
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".sddc-state-")] == []


def test_state_file_replaces_a_loose_existing_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("old")
    os.chmod(state, 0o644)
    _write_private_json(str(state), {"a": 1})
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and json.loads(state.read_text()) == {"a": 1}


# -- bounded load ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_bounded_load_keeps_log_and_tokens_within_their_caps() -> None:
    # Eight times the log's ring and twenty times the token cap: enough to show both stay bounded.
    # (20,000 requests took 45 s under CI's parallel load, the suite's longest test, for no more.)
    ring, cap, total = 500, 50, 4_000
    with serving(request_log_size=ring, max_tokens=cap, login_rate=1e9, login_burst=1_000_000) as server:
        headers = token(server.base_url)
        assert server.port is not None
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        login_body = json.dumps(CREDENTIALS)
        try:
            for index in range(total):  # bounded by count, never by time
                kind = index % 4
                if kind == 0:
                    connection.request("POST", "/v1/tokens", body=login_body,
                                       headers={"Content-Type": "application/json"})
                elif kind == 1:
                    connection.request("DELETE", f"/v1/tasks/unknown-{index}", headers=headers)
                elif kind == 2:
                    connection.request("GET", f"/v1/tasks/x{index}")  # unauthenticated
                else:
                    connection.request("GET", "/v1/tasks?pageSize=1", headers={"Authorization": "Bearer forged"})
                response = connection.getresponse()
                response.read()
                assert response.status in (201, 401, 404)
        finally:
            connection.close()
        assert len(server.request_log) <= ring
        assert server.service.request_log.evicted >= total - ring
        assert len(server.service.tokens) <= cap and server.service.tokens.refresh_count <= cap


def test_streamed_body_is_not_read_past_the_cap() -> None:
    """Driven as ASGI, so the test can count how many body chunks the app pulls."""
    app = create_app(ReferenceConfig(password=PASSWORD, max_body_bytes=4096))
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b" " * 1024, "more_body": pulled < 10_000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/tokens", "raw_path": b"/v1/tokens", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/json")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled <= 6  # 4 KiB allowed, the fifth 1 KiB chunk passes the cap; never the other 9,995


def test_declared_oversized_body_is_refused_on_any_route() -> None:
    with serving(max_body_bytes=LIMIT) as server:
        headers = token(server.base_url)
        task_id = server.store.ids_by_status()["IN_PROGRESS"][0]
        response = requests.delete(f"{server.base_url}/v1/tasks/{task_id}", data=b"x" * (LIMIT + 1),
                                   headers=headers, timeout=TIMEOUT)
        assert assert_error(response, 413)["errorCode"] == "PAYLOAD_TOO_LARGE"
        assert server.store.status_of(task_id) == "IN_PROGRESS"

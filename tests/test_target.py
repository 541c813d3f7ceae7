"""The Target over real HTTP on 127.0.0.1: login, budget, redirects, body cap, timeouts, re-login, proxies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import TEST_PASSWORD, Reply, SeenRequest, StubServer, free_port

from conformance.engine.target import (
    AuthenticationFailed,
    BudgetExhausted,
    Target,
    TargetConfig,
    TargetError,
    TargetStoppedAnswering,
    TargetUnreachable,
    encode_id,
)
from conformance.requirements import get
from conformance.requirements.checks import CheckContext

ERROR = json.dumps({"errorCode": "TA_TASK_NOT_FOUND", "message": "not found"}).encode()
USER = "admin@local"


def target(base_url: str, **config: Any) -> Target:
    return Target(TargetConfig(base_url=base_url, **config))


def not_found(request: SeenRequest, release: Any) -> Reply:
    return Reply(404, ERROR)


# -- login ------------------------------------------------------------------------------------------

def test_login_through_post_tokens(reference_server: Callable[..., Any]) -> None:
    server = reference_server()
    t = target(server.base_url, username=USER, password=TEST_PASSWORD)
    t.login()
    exchange = t.cancel("no-such-task", purpose="test")
    assert exchange.response is not None and exchange.response.status == 404
    log = server.request_log
    assert [(r.method, r.path) for r in log] == [("POST", "/v1/tokens"), ("DELETE", "/v1/tasks/no-such-task")]
    assert log[1].authenticated
    # The recorded request never holds the token.
    assert exchange.request.headers["Authorization"] == "Bearer [redacted]"
    assert t.requests_sent == 2


def test_token_is_used_as_given(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(not_found)
    t = target(stub.base_url, token="given-token", username=USER, password="pw")
    t.login()  # a token wins: no POST /v1/tokens
    t.cancel("x", purpose="test")
    assert [r.method for r in stub.seen] == ["DELETE"]
    assert stub.seen[0].headers["Authorization"] == "Bearer given-token"


def test_a_query_in_the_path_goes_out_once(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(not_found)
    t = target(stub.base_url, token="given-token")
    t.send("GET", "/v1/tasks?pageSize=1", purpose="test")
    t.send("GET", "/v1/tasks?pageSize=1", purpose="test", params={"pageNumber": 2})
    t.send("GET", "/v1/tasks", purpose="test", params={"pageSize": 3})
    assert [r.path for r in stub.seen] == ["/v1/tasks?pageSize=1", "/v1/tasks?pageSize=1&pageNumber=2",
                                          "/v1/tasks?pageSize=3"]


def test_bad_credentials(reference_server: Callable[..., Any]) -> None:
    server = reference_server()
    secret = "wrong-secret-9f3a"
    t = target(server.base_url, username=USER, password=secret)
    with pytest.raises(AuthenticationFailed) as caught:
        t.login()
    message = str(caught.value)
    assert USER in message and f"{server.base_url}/v1/tokens" in message
    assert secret not in message and TEST_PASSWORD not in message
    assert isinstance(caught.value, TargetError)


def test_login_answer_without_token(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(201, b'{"token": "x"}'))
    with pytest.raises(AuthenticationFailed, match="without an accessToken") as caught:
        target(stub.base_url, username=USER, password="secret-pw").login()
    assert "secret-pw" not in str(caught.value)


def test_unreachable_port() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TargetUnreachable, match="connection refused") as caught:
        target(url, username=USER, password="pw-123").login()
    assert url in str(caught.value) and "pw-123" not in str(caught.value)


def test_unreachable_send_is_an_exchange_then_stops() -> None:
    t = target(f"http://127.0.0.1:{free_port()}", token="t", max_consecutive_failures=2)
    exchange = t.cancel("x", purpose="test")
    assert exchange.response is None and exchange.error == "connection refused"
    with pytest.raises(TargetStoppedAnswering, match="2 requests in a row failed") as caught:
        t.cancel("y", purpose="test")
    assert caught.value.exchange.error == "connection refused"


# -- budget -----------------------------------------------------------------------------------------

def test_budget(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(not_found)
    t = target(stub.base_url, token="t", max_requests=3)
    for i in range(3):
        t.cancel(f"id{i}", purpose="test")
    assert t.remaining() == 0
    with pytest.raises(BudgetExhausted, match="budget of 3"):
        t.cancel("one-too-many", purpose="test")
    with pytest.raises(BudgetExhausted):
        t.send("GET", "/v1/tasks", purpose="test")
    assert t.requests_sent == 3 and len(stub.seen) == 3


def test_budget_counts_login(reference_server: Callable[..., Any]) -> None:
    server = reference_server()
    t = target(server.base_url, username=USER, password=TEST_PASSWORD, max_requests=1)
    t.login()
    with pytest.raises(BudgetExhausted):
        t.cancel("x", purpose="test")
    assert len(server.request_log) == 1


# -- redirects --------------------------------------------------------------------------------------

def test_redirects_are_never_followed(stub_server: Callable[..., StubServer]) -> None:
    elsewhere = stub_server(not_found)
    location = f"{elsewhere.base_url}/v1/tasks/x"
    origin = stub_server(lambda request, release: Reply(302, b"", {"Location": location}))
    t = target(origin.base_url, token="secret-token")
    exchange = t.cancel("x", purpose="test")
    assert exchange.response is not None and exchange.response.status == 302
    assert elsewhere.seen == []  # nothing went there, so the Authorization header did not either
    assert origin.seen[0].headers["Authorization"] == "Bearer secret-token"
    [violation] = get("SCH-STATUS").func(CheckContext.default(), exchange)
    assert location in str(violation) and "not followed" in str(violation)


def test_307_is_not_followed_either(stub_server: Callable[..., StubServer]) -> None:
    elsewhere = stub_server(not_found)
    origin = stub_server(lambda request, release: Reply(307, b"", {"Location": elsewhere.base_url + "/x"}))
    for method in ("DELETE", "GET"):
        exchange = target(origin.base_url, token="t").send(method, "/v1/tasks/x", purpose="test")
        assert exchange.response is not None and exchange.response.status == 307
    assert elsewhere.seen == []


def test_login_redirect_is_not_followed(stub_server: Callable[..., StubServer]) -> None:
    elsewhere = stub_server(lambda request, release: Reply(201, b'{"accessToken": "a"}'))
    origin = stub_server(lambda request, release: Reply(307, b"", {"Location": elsewhere.base_url + "/v1/tokens"}))
    with pytest.raises(AuthenticationFailed, match="answered 307"):
        target(origin.base_url, username=USER, password="secret").login()
    assert elsewhere.seen == []


# -- body cap ---------------------------------------------------------------------------------------

def test_body_cap_truncates(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(404, b'{"message": "' + b"x" * 200_000 + b'"}'))
    exchange = target(stub.base_url, token="t", max_body_bytes=100).cancel("x", purpose="test")
    response = exchange.response
    assert response is not None and response.truncated and len(response.body) == 100
    assert not response.json.ok and "larger than the suite reads" in (response.json.error or "")
    full = target(stub.base_url, token="t").cancel("x", purpose="test").response
    assert full is not None and not full.truncated and full.json.ok


# -- timeouts and failures ------------------------------------------------------------------------------

def hang_on(path_part: str) -> Callable[[SeenRequest, Any], Reply | None]:
    def handle(request: SeenRequest, release: Any) -> Reply | None:
        if path_part in request.path:
            release.wait(30)  # until the test ends; the client times out long before
            return None
        return Reply(404, ERROR)

    return handle


def test_timeout_is_an_exchange_and_failures_in_a_row_stop_the_run(
    stub_server: Callable[..., StubServer],
) -> None:
    stub = stub_server(hang_on("hang"))
    t = target(stub.base_url, token="t", timeout=0.3, max_consecutive_failures=3)
    first = t.cancel("hang-1", purpose="test", task_id="hang-1")
    assert first.response is None and first.error == "no answer within 0.3 s" and first.task_id == "hang-1"
    [violation] = get("SRV-ANSWERS").func(CheckContext.default(), first)
    assert "no answer" in str(violation)
    t.cancel("hang-2", purpose="test")
    # A success resets the count of failures in a row.
    ok = t.cancel("fine", purpose="test")
    assert ok.response is not None and ok.response.status == 404
    t.cancel("hang-3", purpose="test")
    t.cancel("hang-4", purpose="test")
    with pytest.raises(TargetStoppedAnswering, match="3 requests in a row failed") as caught:
        t.cancel("hang-5", purpose="test")
    assert "no answer within 0.3 s" in str(caught.value)


def test_quick_failures_do_not_stop_the_run_while_an_older_request_may_still_answer(
    stub_server: Callable[..., StubServer],
) -> None:
    # Side by side, quick failures (a reset) can overtake a slow good answer sent before them:
    # that is no target that stopped answering until the older request has failed too.
    arrived, answer = threading.Event(), threading.Event()

    def handle(request: SeenRequest, release: Any) -> Reply | None:
        if "slow" in request.path:
            arrived.set()
            answer.wait(30)
            return Reply(404, ERROR)
        return None  # closed without an answer, at once

    t = target(stub_server(handle).base_url, token="t", max_consecutive_failures=3)
    slow: list[Any] = []
    sender = threading.Thread(target=lambda: slow.append(t.cancel("slow", purpose="test")))
    sender.start()
    assert arrived.wait(30)
    failed = [t.cancel(f"bad-{i}", purpose="test") for i in range(4)]  # no TargetStoppedAnswering
    assert all(exchange.response is None for exchange in failed)
    answer.set()
    sender.join(30)
    assert slow[0].response is not None and slow[0].response.status == 404
    # Its answer ended the streak; three failures with nothing older under way end the run.
    t.cancel("bad-5", purpose="test")
    t.cancel("bad-6", purpose="test")
    with pytest.raises(TargetStoppedAnswering, match="3 requests in a row failed"):
        t.cancel("bad-7", purpose="test")


def test_closed_without_answer(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: None)
    exchange = target(stub.base_url, token="t").cancel("x", purpose="test")
    assert exchange.response is None and exchange.error is not None
    assert "closed" in exchange.error or "reset" in exchange.error


# -- re-login -----------------------------------------------------------------------------------------

def test_relogin_once_when_the_token_expires(reference_server: Callable[..., Any]) -> None:
    ttl = 0.3
    server = reference_server(token_ttl=ttl)
    t = target(server.base_url, username=USER, password=TEST_PASSWORD)
    t.login()
    time.sleep(ttl + 0.2)  # let the token expire (waiting, not measuring)
    exchange = t.cancel("x", purpose="test")
    assert exchange.response is not None and exchange.response.status == 404
    assert [(r.method, r.status_code) for r in server.request_log] == [
        ("POST", 201), ("DELETE", 401), ("POST", 201), ("DELETE", 404)
    ]


def _token_server(valid: set[str]) -> Callable[[SeenRequest, Any], Reply]:
    issued = iter(["t1", "t2", "t3", "t4"])

    def handle(request: SeenRequest, release: Any) -> Reply:
        if request.path == "/v1/tokens":
            return Reply(201, json.dumps({"accessToken": next(issued), "refreshToken": {"id": "r"}}).encode())
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in valid:
            return Reply(404, ERROR)
        return Reply(401, ERROR)

    return handle


def test_a_fresh_token_refused_at_once_ends_the_run(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(_token_server({"t2"}))
    t = target(stub.base_url, username=USER, password="secret")
    t.login()
    assert t.cancel("a", purpose="test").response.status == 404  # type: ignore[union-attr]
    assert [r.method for r in stub.seen] == ["POST", "DELETE", "POST", "DELETE"]
    # The re-login's token is refused on its first use too: the run stops instead of logging in
    # again and again.
    stub2 = stub_server(_token_server(set()))
    t2 = target(stub2.base_url, username=USER, password="secret")
    t2.login()
    with pytest.raises(AuthenticationFailed, match=r"refused the token it had just issued .*401 on its first use"
                       ) as caught:
        t2.cancel("a", purpose="test")
    assert "secret" not in str(caught.value)
    assert [r.method for r in stub2.seen] == ["POST", "DELETE", "POST", "DELETE"]


def test_no_relogin_without_credentials(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(_token_server(set()))
    exchange = target(stub.base_url, token="stale").cancel("a", purpose="test")
    assert exchange.response is not None and exchange.response.status == 401
    assert [r.method for r in stub.seen] == ["DELETE"]


def test_explicit_token_and_no_auth_requests_do_not_relogin(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(_token_server({"t1"}))
    t = target(stub.base_url, username=USER, password="secret")
    t.login()
    assert t.cancel("a", purpose="test", auth=False).response.status == 401  # type: ignore[union-attr]
    assert t.cancel("a", purpose="test", token="forged").response.status == 401  # type: ignore[union-attr]
    assert "Authorization" not in stub.seen[1].headers
    assert stub.seen[2].headers["Authorization"] == "Bearer forged"
    assert [r.method for r in stub.seen] == ["POST", "DELETE", "DELETE"]


# -- environment ----------------------------------------------------------------------------------------

def test_proxy_environment_is_ignored(stub_server: Callable[..., StubServer], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Any) -> None:
    proxy = stub_server(lambda request, release: Reply(502, b"via proxy"))
    server = stub_server(not_found)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.base_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login leaked password leaked\n")
    monkeypatch.setenv("NETRC", str(netrc))
    exchange = target(server.base_url).cancel("x", purpose="test")
    assert exchange.response is not None and exchange.response.status == 404
    assert proxy.seen == []
    assert "Authorization" not in server.seen[0].headers  # no netrc credentials either


# -- ids on the wire ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "..."),
        ("/", "%2F"),
        ("a/../b", "a%2F..%2Fb"),
        ("%2F", "%252F"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("é", "%C3%A9"),
        ("€", "%E2%82%AC"),
        ("タスク", "%E3%82%BF%E3%82%B9%E3%82%AF"),
        ("1b2c-3d", "1b2c-3d"),
    ],
)
def test_encode_id(raw: str, encoded: str) -> None:
    assert encode_id(raw) == encoded


# requests' requote_uri would turn %2E back into "." (an unreserved character), so "." and ".." would
# go out as dot segments that real servers collapse (/v1/tasks/.. -> /v1/).
@pytest.mark.parametrize("raw", [".", "..", "/", "a/b", "é€", "%2e%2e", "?x=1"])
def test_encoded_ids_reach_the_server_as_one_segment(reference_server: Callable[..., Any], raw: str) -> None:
    server = reference_server()
    t = target(server.base_url, username=USER, password=TEST_PASSWORD)
    t.login()
    exchange = t.cancel(encode_id(raw), purpose="test", task_id=raw)
    assert exchange.response is not None and exchange.response.status == 404
    record = server.request_log[-1]
    assert record.path == "/v1/tasks/" + encode_id(raw)
    assert record.task_id == raw

"""The Target's small rules: Retry-After dates, credentials, transport error words, counters, policy limits."""

from __future__ import annotations

import itertools
import json
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import urllib3
from conftest import Reply, SeenRequest, StubServer

from conformance.engine.target import (
    BACKPRESSURE_EASE,
    BACKPRESSURE_MIN_INTERVAL,
    MAX_TOKEN_PROBES,
    SHORT_LIVED_IN_A_ROW,
    SHORT_LIVED_TOKEN,
    AuthenticationFailed,
    BudgetExhausted,
    Target,
    TargetConfig,
    describe_transport_error,
    retry_after_seconds,
)
from conformance.errors import Backpressure

ERROR = json.dumps({"message": "not found"}).encode()


# -- Retry-After ----------------------------------------------------------------------------------------

def test_retry_after_date_without_a_zone_is_read_as_utc() -> None:
    # RFC 5322's "-0000" (and obsolete zone-less forms) parse to a naive datetime: read as UTC,
    # never a crash comparing naive and aware times.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:07 -0000", now) == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:07 GMT", now) == 7.0
    # A date in the past asks for no wait, not a negative one.
    assert retry_after_seconds("Wed, 31 Dec 2025 23:59:00 GMT", now) == 0.0


# -- configuration ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "has"),
    [({"token": "t"}, True), ({"username": "u", "password": "p"}, True), ({"username": "u"}, False),
     ({"password": "p"}, False), ({}, False), ({"token": "t", "username": "u"}, True)],
)
def test_credentials_are_a_token_or_a_username_with_a_password(fields: dict[str, str], has: bool) -> None:
    assert TargetConfig(base_url="http://127.0.0.1:1", **fields).has_credentials is has


def test_default_limits() -> None:
    # A 16 MiB body cap (far above any Error body) and three failures in a row end a dead run.
    config = TargetConfig(base_url="http://127.0.0.1:1")
    assert (config.max_body_bytes, config.max_consecutive_failures) == (16 * 1024 * 1024, 3)


def test_insecure_silences_urllib3_warning_only_when_asked() -> None:
    for verify, silenced in ((True, False), ("/etc/ca.pem", False), (False, True)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            Target(TargetConfig(base_url="http://127.0.0.1:1", verify=verify))
            warnings.warn("unverified", urllib3.exceptions.InsecureRequestWarning, stacklevel=1)
        assert (not seen) is silenced, verify


# -- transport errors in words ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (requests.ConnectionError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"),
         "the connection was reset"),
        (requests.ConnectionError("Max retries exceeded: Name or service not known\nmore detail"),
         "connection failed: Max retries exceeded: Name or service not known"),
        (ValueError("odd\nsecond line"), "ValueError: odd"),
        (ValueError(""), "ValueError: "),
        (ValueError("   "), "ValueError: "),
    ],
)
def test_transport_errors_in_words(exc: BaseException, words: str) -> None:
    assert describe_transport_error(exc, 10.0) == words


def test_an_error_text_is_cut_to_its_first_200_characters() -> None:
    assert describe_transport_error(ValueError("x" * 500), 1.0) == "ValueError: " + "x" * 200
    assert describe_transport_error(ValueError("x" * 200), 1.0) == "ValueError: " + "x" * 200


# -- counters and limits against a stub ------------------------------------------------------------------

def test_deletes_and_their_distinct_paths_are_counted(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(404, ERROR))
    target = Target(TargetConfig(base_url=stub.base_url, token="t"))
    assert (target.deletes_sent, target.distinct_delete_paths) == (0, 0)
    target.cancel("a", purpose="test")
    target.cancel("a", purpose="test")
    target.cancel("b", purpose="test")
    target.get_task("a", purpose="read")
    assert (target.deletes_sent, target.distinct_delete_paths, target.requests_sent) == (3, 2, 4)


def _expiring_tokens(lifetime: int | Callable[[int], int]) -> Callable[[SeenRequest, Any], Reply]:
    """A stub whose n-th token (from 0) answers `lifetime` requests (or `lifetime(n)`), then 401."""
    issued = itertools.count()
    left: dict[str, int] = {}
    lock = threading.Lock()

    def handle(request: SeenRequest, release: Any) -> Reply:
        with lock:
            if request.method == "POST":
                n = next(issued)
                left[f"t{n}"] = lifetime(n) if callable(lifetime) else lifetime
                return Reply(201, json.dumps({"accessToken": f"t{n}"}).encode())
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if left.get(token, 0) > 0:
                left[token] -= 1
                return Reply(404, ERROR)
            return Reply(401, ERROR)

    return handle


def test_tokens_are_renewed_for_as_long_as_the_run_lasts(stub_server: Callable[..., StubServer]) -> None:
    # Tokens that last 6 requests: 24 cancels need four tokens, and no 401 reaches the caller.
    stub = stub_server(_expiring_tokens(6))
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"))
    target.login()
    statuses = {e.response.status for e in (target.cancel(f"x{n}", purpose="test") for n in range(24))
                if e.response is not None}
    assert statuses == {404}
    assert target.logins == sum(1 for r in stub.seen if r.method == "POST") == 4
    assert target.token_lifetimes == [6, 6, 6] and target.expired_requests == 3
    # Each expiry cost one refused request and one login, all of them counted as requests.
    assert target.requests_sent == len(stub.seen) == 24 + 3 + 4


def test_tokens_that_keep_dying_young_end_the_run(stub_server: Callable[..., StubServer]) -> None:
    # A token that answers SHORT_LIVED_TOKEN - 1 requests is short-lived; three in a row stop the run
    # with the lifetimes in the message, rather than a login every few requests.
    stub = stub_server(_expiring_tokens(SHORT_LIVED_TOKEN - 1))
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"))
    target.login()
    with pytest.raises(AuthenticationFailed, match=r"fewer than 5 requests \(the last 3 answered 4, 4, 4\)"):
        for n in range(100):
            target.cancel(f"x{n}", purpose="test")
    assert target.logins == SHORT_LIVED_IN_A_ROW


def test_one_long_lived_token_resets_the_count_of_short_lived_ones(stub_server: Callable[..., StubServer]) -> None:
    # Lifetimes 2, 2, 5, 2, 2, 5, ...: never three short-lived tokens in a row, so the run goes on.
    stub = stub_server(_expiring_tokens(lambda n: 5 if n % 3 == 2 else 2))
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"))
    target.login()
    for n in range(14):
        target.cancel(f"x{n}", purpose="test")
    assert target.token_lifetimes == [2, 2, 5, 2, 2]


def test_a_refused_token_right_after_a_renewal_ends_the_run(stub_server: Callable[..., StubServer]) -> None:
    # The first token works 10 times; the re-login's token is refused on its first use.
    stub = stub_server(_expiring_tokens(lambda n: 10 if n == 0 else 0))
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"))
    target.login()
    for n in range(10):
        target.cancel(f"x{n}", purpose="test")
    with pytest.raises(AuthenticationFailed, match="401 on its first use"):
        target.cancel("x10", purpose="test")
    assert [r.method for r in stub.seen[-3:]] == ["DELETE", "POST", "DELETE"]


def test_a_failed_login_mid_run_ends_the_run(stub_server: Callable[..., StubServer]) -> None:
    logins = itertools.count()

    def handle(request: SeenRequest, release: Any) -> Reply:
        if request.method == "POST":
            if next(logins):
                return Reply(401, ERROR)  # the password was changed mid-run
            return Reply(201, b'{"accessToken": "t0"}')
        return Reply(401 if len(stub.seen) > 3 else 404, ERROR)

    stub = stub_server(handle)
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"))
    target.login()
    target.cancel("a", purpose="test")
    target.cancel("b", purpose="test")
    with pytest.raises(AuthenticationFailed, match="authentication failed for user 'u'"):
        target.cancel("c", purpose="test")


def test_a_given_token_with_credentials_is_replaced_when_it_expires(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(_expiring_tokens(3))
    target = Target(TargetConfig(base_url=stub.base_url, token="given", username="u", password="p"))
    target.login()  # the given token is used first: no login yet
    assert [e.response.status for e in (target.cancel("a", purpose="test"),)] == [404]  # type: ignore[union-attr]
    assert target.token_lifetimes == [0] and target.logins == 1
    assert target.given_token_answered == 0


def test_the_budget_ends_a_login_mid_run_as_a_spent_budget(stub_server: Callable[..., StubServer]) -> None:
    # Logins are requests of the budget; a budget spent by a re-login is a spent budget (flow
    # control: the run reports it as such), not a target that could not be judged.
    stub = stub_server(_expiring_tokens(2))
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p", max_requests=4))
    target.login()
    target.cancel("a", purpose="test")
    target.cancel("b", purpose="test")
    with pytest.raises(BudgetExhausted):
        target.cancel("c", purpose="test")  # its 401 is the 4th request; the login would be the 5th


def test_five_backpressure_answers_are_waited_out_a_sixth_ends_the_run(
        stub_server: Callable[..., StubServer]) -> None:
    answers = iter([429] * 5 + [404] + [429] * 6)

    def handle(request: SeenRequest, release: Any) -> Reply:
        status = next(answers)
        return Reply(status, ERROR, {"Content-Type": "application/json", "Retry-After": "0"})

    stub = stub_server(handle)
    target = Target(TargetConfig(base_url=stub.base_url, token="t"), sleep=lambda s: None, jitter=lambda: 0.0)
    exchange = target.cancel("a", purpose="test")
    assert exchange.response is not None and exchange.response.status == 404
    with pytest.raises(Backpressure, match="after 5 retries"):
        target.cancel("b", purpose="test")
    assert len(stub.seen) == 12


def test_no_credentials_no_login(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(404, ERROR))
    for config in (TargetConfig(base_url=stub.base_url, token="t", username="u", password="p"),
                   TargetConfig(base_url=stub.base_url, username="u")):
        Target(config).login()
    assert stub.seen == []
    with pytest.raises(AuthenticationFailed):
        Target(TargetConfig(base_url=stub.base_url, username="u", password="p")).login()


def test_the_pause_never_lingers_below_half_the_minimum_interval(stub_server: Callable[..., StubServer]) -> None:
    # After backpressure the pause shrinks by BACKPRESSURE_EASE per plain answer, and once it would
    # fall under half of BACKPRESSURE_MIN_INTERVAL it is dropped: no crawl of ever tinier waits.
    answers = iter([429])

    def handle(request: SeenRequest, release: Any) -> Reply:
        status = next(answers, 404)
        return Reply(status, ERROR, {"Content-Type": "application/json", "Retry-After": "0"})

    stub = stub_server(handle)
    target = Target(TargetConfig(base_url=stub.base_url, token="t"), sleep=lambda s: None, jitter=lambda: 0.0)
    pauses = []
    for n in range(12):
        target.cancel(f"a{n}", purpose="test")
        pauses.append(target._backpressure_interval)
    assert pauses[0] == pytest.approx(BACKPRESSURE_MIN_INTERVAL * BACKPRESSURE_EASE)
    assert all(p == 0.0 or p >= BACKPRESSURE_MIN_INTERVAL / 2 for p in pauses)
    first_zero = pauses.index(0.0)
    assert pauses[first_zero - 1] * BACKPRESSURE_EASE < BACKPRESSURE_MIN_INTERVAL / 2
    assert all(p == 0.0 for p in pauses[first_zero:])


def test_query_parameters_go_out_and_a_plain_path_gets_no_question_mark(
        stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(404, ERROR))
    target = Target(TargetConfig(base_url=stub.base_url, token="t"))
    listed = target.send("GET", "/v1/tasks", purpose="list", params={"pageNumber": 2, "pageSize": 100})
    cancelled = target.cancel("a", purpose="test")
    assert [r.path for r in stub.seen] == ["/v1/tasks?pageNumber=2&pageSize=100", "/v1/tasks/a"]
    assert listed.request.url == f"{stub.base_url}/v1/tasks?pageNumber=2&pageSize=100"
    assert cancelled.request.url == f"{stub.base_url}/v1/tasks/a"


def test_the_reason_phrase_is_recorded(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(404, ERROR))
    exchange = Target(TargetConfig(base_url=stub.base_url, token="t")).cancel("a", purpose="test")
    assert exchange.response is not None and exchange.response.reason == "Not Found"


def test_close_closes_this_threads_session() -> None:
    target = Target(TargetConfig(base_url="http://127.0.0.1:1", token="t"))
    target.close()  # nothing opened yet: nothing to close, no error
    closed: list[bool] = []
    session = target._session()
    session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    target.close()
    assert closed == [True]


def test_run_concurrently_returns_every_result_in_order_and_re_raises(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(lambda request, release: Reply(404, ERROR))
    target = Target(TargetConfig(base_url=stub.base_url, token="t"))
    done = target.run_concurrently([lambda n=n: target.cancel(f"c{n}", purpose="race") for n in range(3)])  # type: ignore[misc]
    assert [e.request.url.rsplit("/", 1)[1] for e in done] == ["c0", "c1", "c2"]

    def boom() -> Any:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        target.run_concurrently([lambda: target.cancel("d", purpose="race"), boom])


def test_a_username_without_a_password_never_relogs_in(stub_server: Callable[..., StubServer]) -> None:
    # A given token that expires, with a username but no password to log in again: the 401 stands.
    stub = stub_server(lambda request, release: Reply(401, ERROR))
    target = Target(TargetConfig(base_url=stub.base_url, token="stale", username="u"))
    exchange = target.cancel("a", purpose="test")
    assert exchange.response is not None and exchange.response.status == 401
    assert [r.method for r in stub.seen] == ["DELETE"]


def test_requests_in_flight_that_meet_one_expiry_cost_one_login(stub_server: Callable[..., StubServer]) -> None:
    # Eight cancels side by side all carry the token that has just expired: the first to come back
    # re-logs in and the others re-send with its token: one expiry, one login.
    issued = itertools.count()
    current: list[str] = []
    stale_answers = threading.Semaphore(0)
    lock = threading.Lock()
    stale = [0]

    def handle(request: SeenRequest, release: Any) -> Reply:
        if request.method == "POST":
            current.append(f"t{next(issued)}")
            return Reply(200, json.dumps({"accessToken": current[-1]}).encode())
        if request.headers.get("Authorization") == f"Bearer {current[-1]}" and current[-1] != "t0":
            return Reply(404, ERROR)
        with lock:
            stale[0] += 1
            if stale[0] == 8:
                stale_answers.release(8)  # every cancel holds the expired token before any 401 goes back
        stale_answers.acquire(timeout=5)
        return Reply(401, ERROR)

    stub = stub_server(handle)
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"))
    target.login()
    exchanges = target.run_concurrently([lambda n=n: target.cancel(f"x{n}", purpose="test") for n in range(8)])
    assert [e.response.status if e.response else None for e in exchanges] == [404] * 8
    assert sum(1 for r in stub.seen if r.method == "POST") == 2
    assert target.expired_requests == 8 and target.logins == 2


def _given_token_server(lifetime: int, refuse: str = "never") -> Callable[[SeenRequest, Any], Reply]:
    """The token "given" gets in `lifetime` times, then 401 everywhere; a path with `refuse` in it
    always answers 401 (a target that refuses some ids though the token works)."""
    left = [lifetime]
    lock = threading.Lock()

    def handle(request: SeenRequest, release: Any) -> Reply:
        with lock:
            if refuse in request.path:
                return Reply(401, ERROR)
            if request.headers.get("Authorization") == "Bearer given" and left[0] > 0:
                left[0] -= 1
                return Reply(404, ERROR)
            return Reply(401, ERROR)

    return handle


def test_a_given_token_that_expires_ends_the_run_and_says_how_to_go_on(
        stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(_given_token_server(3))
    target = Target(TargetConfig(base_url=stub.base_url, token="given"))
    target.flag_prefix = "--sddc-"
    for n in range(3):
        target.cancel(f"x{n}", purpose="test")
    with pytest.raises(AuthenticationFailed, match=r"--sddc-token expired after 3 requests; give --sddc-username"):
        target.cancel("x3", purpose="test")
    # The 401, then one read-only probe that got 401 too.
    assert [(r.method, r.path) for r in stub.seen[-2:]] == [("DELETE", "/v1/tasks/x3"), ("GET", "/v1/tasks?pageSize=1")]


def test_a_401_while_the_given_token_still_gets_in_is_the_targets_answer(
        stub_server: Callable[..., StubServer]) -> None:
    # Some ids answer 401 though the token works: returned to be judged, after a probe that got
    # in; only MAX_TOKEN_PROBES probes a run, so such a target cannot double the run's requests.
    stub = stub_server(_given_token_server(1000, refuse="odd"))
    target = Target(TargetConfig(base_url=stub.base_url, token="given"))
    target.cancel("fine", purpose="test")
    statuses = [target.cancel(f"odd{n}", purpose="test").response.status for n in range(5)]  # type: ignore[union-attr]
    assert statuses == [401] * 5
    assert sum(1 for r in stub.seen if r.method == "GET") == MAX_TOKEN_PROBES


def test_a_given_token_never_accepted_is_left_to_the_preflight(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(_given_token_server(0))
    exchange = Target(TargetConfig(base_url=stub.base_url, token="given")).cancel("x", purpose="test")
    assert exchange.response is not None and exchange.response.status == 401
    assert [r.method for r in stub.seen] == ["DELETE"]

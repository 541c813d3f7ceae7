"""Backpressure (429, or 503 with Retry-After): wait as asked, re-send, slow down; never judged."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from conftest import Reply, SeenRequest, StubServer, run_in_process

from conformance.engine.target import (
    MAX_BACKPRESSURE_RETRIES,
    MAX_RETRY_AFTER,
    Target,
    TargetConfig,
    retry_after_seconds,
)
from conformance.errors import Backpressure, BudgetExhausted
from conformance.model import Outcome
from conformance.outcome import ExitCode

TOKENS = json.dumps({"accessToken": "t", "refreshToken": {"id": "r"}}).encode()


class FakeTime:
    """An injected clock and sleep: waits are recorded and advance the clock, nobody waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answering(*replies: Reply, then: Reply | None = None) -> Callable[[SeenRequest, threading.Event], Reply]:
    queue = list(replies)
    lock = threading.Lock()

    def handle(request: SeenRequest, release: threading.Event) -> Reply:
        with lock:
            if queue:
                return queue.pop(0)
        return then or Reply(404, b'{"message": "Task not found"}')

    return handle


def busy(retry_after: str | None = "2", status: int = 429) -> Reply:
    headers = {"Content-Type": "text/plain"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(status, b"slow down", headers)


def make_target(stub: StubServer, fake: FakeTime, **config: Any) -> Target:
    return Target(TargetConfig(base_url=stub.base_url, token="t", **config),
                  sleep=fake.sleep, clock=fake.clock, jitter=lambda: 0.0)


def test_a_429_is_waited_out_and_the_same_request_re_sent(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(busy("2"), busy("3")))
    fake = FakeTime()
    target = make_target(stub, fake)
    exchange = target.cancel("abc", purpose="test", task_id="abc")
    assert exchange.response is not None and exchange.response.status == 404
    assert [r.path for r in stub.seen] == ["/v1/tasks/abc"] * 3
    assert target.backpressure_retries == 2
    # Retry-After honoured (2 s, then 3 s), no other long wait.
    assert [s for s in fake.sleeps if s >= 1] == [2.0, 3.0]
    assert target.requests_sent == 3  # every re-send counts against --max-requests


def test_retry_after_as_an_http_date_and_the_cap() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7.0
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_huge_retry_after_is_capped(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(busy("86400")))
    fake = FakeTime()
    make_target(stub, fake).cancel("abc", purpose="test")
    assert max(fake.sleeps) == MAX_RETRY_AFTER


def test_503_with_retry_after_is_backpressure_without_it_is_judged(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(busy("1", status=503), busy(None, status=503)))
    fake = FakeTime()
    target = make_target(stub, fake)
    exchange = target.cancel("abc", purpose="test")
    assert exchange.response is not None and exchange.response.status == 503
    assert target.backpressure_retries == 1


def test_persistent_backpressure_ends_the_run_with_no_verdict(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(then=busy("1")))
    fake = FakeTime()
    target = make_target(stub, fake)
    with pytest.raises(Backpressure) as raised:
        target.cancel("abc", purpose="test")
    assert raised.value.exit_code is ExitCode.NO_VERDICT
    assert "\n" not in str(raised.value)
    assert len(stub.seen) == MAX_BACKPRESSURE_RETRIES + 1
    assert target.backpressure_retries == MAX_BACKPRESSURE_RETRIES


def test_retries_are_bounded_by_the_request_budget(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(then=busy("1")))
    target = make_target(stub, FakeTime(), max_requests=2)
    with pytest.raises(BudgetExhausted):
        target.cancel("abc", purpose="test")
    assert len(stub.seen) == 2


def test_login_waits_out_backpressure_too(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(busy("4"), then=Reply(200, TOKENS)))
    fake = FakeTime()
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"),
                    sleep=fake.sleep, clock=fake.clock, jitter=lambda: 0.0)
    target.login()
    assert [r.path for r in stub.seen] == ["/v1/tokens", "/v1/tokens"]
    assert 4.0 in fake.sleeps and target.backpressure_retries == 1


def test_a_login_that_keeps_being_pushed_back_gives_up_after_the_retries(
        stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(then=busy("1")))
    fake = FakeTime()
    target = Target(TargetConfig(base_url=stub.base_url, username="u", password="p"),
                    sleep=fake.sleep, clock=fake.clock, jitter=lambda: 0.0)
    with pytest.raises(Backpressure) as raised:
        target.login()
    assert "POST /v1/tokens" in str(raised.value)
    assert [r.path for r in stub.seen] == ["/v1/tokens"] * (MAX_BACKPRESSURE_RETRIES + 1)
    assert target.backpressure_retries == MAX_BACKPRESSURE_RETRIES


def test_backpressure_slows_the_run(stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(busy("0")))
    fake = FakeTime()
    target = make_target(stub, fake)
    target.cancel("a", purpose="test")
    before = len(fake.sleeps)
    target.cancel("b", purpose="test")
    target.cancel("c", purpose="test")
    # No rate limit was set, yet requests after a 429 are spaced out.
    assert len(fake.sleeps) > before and all(s > 0 for s in fake.sleeps[before:])


@pytest.mark.slow
def test_the_run_speeds_up_again_once_the_target_stops_pushing_back(
        stub_server: Callable[..., StubServer]) -> None:
    stub = stub_server(answering(busy("0"), busy("0"), busy("0")))
    fake = FakeTime()
    target = make_target(stub, fake)
    target.cancel("a", purpose="test")  # three 429s, then an answer: the pause has grown
    paused = target._backpressure_interval
    assert paused > 0
    for n in range(60):  # plain answers: the pause shrinks step by step, then goes away
        target.cancel(f"b{n}", purpose="test")
    assert target._backpressure_interval == 0.0
    before = len(fake.sleeps)
    target.cancel("c", purpose="test")
    assert len(fake.sleeps) == before  # no rate limit set, no pause left: no wait


@pytest.mark.slow
def test_the_backpressure_variation_is_conformant_and_reported() -> None:
    result = run_in_process("backpressure-429", max_examples=20)
    assert {r.requirement.id for r in result.results if r.outcome is Outcome.FAIL} == set()
    assert any(note.startswith("backpressure: ") for note in result.notes)


def test_answers_to_requests_already_in_flight_slow_the_run_down_once(
        stub_server: Callable[..., StubServer]) -> None:
    # Eight requests sent side by side all meet the same busy moment: their 429s are one signal.
    stub = stub_server(answering(busy("0")))
    fake = FakeTime()
    target = make_target(stub, fake)
    fake.now = 10.0
    for _ in range(8):
        target._back_off({"Retry-After": "0"}, sent_at=9.0)
    assert target._backpressure_interval == pytest.approx(0.02)
    assert target.backpressure_retries == 8
    # A request sent after that slowdown and still pushed back: the pace was still too fast.
    fake.now = 11.0
    target._back_off({"Retry-After": "0"}, sent_at=10.5)
    assert target._backpressure_interval == pytest.approx(0.04)

"""Independent requests go out side by side: bounded, in order of results, stopping on the first error."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from conformance.engine.fanout import fan_out
from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.errors import BudgetExhausted, OptionsError
from conformance.identity import near_misses
from conformance.model import Profile
from conformance.options import RunOptions


def test_results_come_back_in_item_order() -> None:
    assert fan_out(range(20), lambda n: n * n, 4) == [n * n for n in range(20)]


def test_no_more_than_concurrency_run_at_once() -> None:
    lock = threading.Lock()
    state = {"now": 0, "most": 0}
    gate = threading.Barrier(3, timeout=5)

    def work(n: int) -> int:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        if n < 3:
            gate.wait()  # the first three meet: proves three really ran together
        with lock:
            state["now"] -= 1
        return n

    fan_out(range(12), work, 3)
    assert state["most"] == 3


def test_the_first_error_stops_what_has_not_started() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
        if n == 0:
            raise BudgetExhausted("spent")
        time.sleep(0.005)  # slow enough that most items are still queued when the error is seen
        return n

    with pytest.raises(BudgetExhausted):
        fan_out(range(1000), work, 2)
    assert len(started) < 1000


def test_concurrency_one_is_sequential() -> None:
    seen: list[str] = []
    fan_out(range(5), lambda n: seen.append(threading.current_thread().name), 1)
    assert set(seen) == {threading.current_thread().name}


@pytest.mark.parametrize("value", [0, 33])
def test_concurrency_is_bounded(value: int) -> None:
    with pytest.raises(OptionsError, match="--concurrency"):
        RunOptions(concurrency=value).validate()


def _generated_paths(concurrency: int) -> tuple[set[str], int]:
    options = RunOptions(profile=Profile.SCHEMA, max_examples=40, seed=5, concurrency=concurrency)
    with open_session(options) as session:
        execute(session)
        server = session.provision
        known = set(session.pool.known_ids())
        # Near-misses are derived from the tasks' own ids (identity's families), which each embedded
        # server mints anew: only the ids that share nothing with a task.
        near = {n.text for k in known for n in near_misses(k)}
        paths = {r.path for r in server.request_log if r.method == "DELETE" and r.task_id not in near
                 and not any(k[:8].lower() in (r.task_id or "").lower() for k in known)}
        sent = session.target.requests_sent
    # Task ids are minted anew by each embedded server: compare only the ids that name no task.
    return paths, sent


@pytest.mark.slow
def test_same_seed_same_set_of_requests_whatever_the_concurrency(tmp_path: Path) -> None:
    sequential, sent_one = _generated_paths(1)
    parallel, sent_four = _generated_paths(4)
    assert sequential == parallel
    assert sent_one == sent_four


def test_an_interrupt_while_waiting_drops_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.engine.fanout as fanout

    started: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
        time.sleep(0.01)
        return n

    def interrupted_wait(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(fanout, "wait", interrupted_wait)
    with pytest.raises(KeyboardInterrupt):
        fan_out(range(500), work, 2)
    assert len(started) < 500  # the queued items never ran

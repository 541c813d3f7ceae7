"""The scenario lane, task holds and the in-flight slots: order and hand-over, counted by events
(never by the wall clock)."""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.engine.lanes import SWITCH_INTERVAL, ScenarioLane, TaskHolds
from conformance.engine.target import _Slots
from conformance.errors import BudgetExhausted, Interrupted, TargetStoppedAnswering
from conformance.model import Kind, Profile, Requirement, Severity

WAIT = 10.0  # only a bound on a hang; no assertion depends on it


@pytest.fixture(autouse=True)
def _switch_interval() -> Iterator[None]:
    # Lanes started here and never stopped would leave the process's GIL setting changed.
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default, whatever an earlier test left
    yield
    sys.setswitchinterval(before)


def scenario(rid: str, func: Callable[[Any], None], *, takes: bool = False, beside: bool = False) -> Requirement:
    return Requirement(id=rid, severity=Severity.MUST, profile=Profile.BEHAVIOR, kind=Kind.SCENARIO, title=rid,
                       seed="", source="seed", func=func, takes_in_progress=takes, beside=beside)


class FakeTarget:
    def __init__(self) -> None:
        self.halts: list[BaseException | None] = []
        self.halted = threading.Event()
        self.urgent_threads: set[str] = set()

    def urgent(self) -> None:
        self.urgent_threads.add(threading.current_thread().name)

    def halt(self, reason: BaseException | None) -> None:
        self.halts.append(reason)
        if reason is not None:
            self.halted.set()


class FakeSession:
    def __init__(self) -> None:
        self.target = FakeTarget()
        self.activity = ""


def lane(scenarios: list[Requirement]) -> tuple[ScenarioLane, FakeSession]:
    session = FakeSession()
    return ScenarioLane(session, scenarios, session.target.halt), session  # type: ignore[arg-type]


def test_one_at_a_time_runs_in_registration_order_when_an_item_asks() -> None:
    ran: list[str] = []
    scenarios = [scenario(n, lambda s, n=n: ran.append(n), takes=n == "C", beside=n == "B") for n in "ABC"]
    lanes, _ = lane(scenarios)
    lanes.result("B")
    assert ran == ["A", "B"]  # nothing ran ahead of the item that asked
    lanes.result("C")
    lanes.result("A")
    assert ran == ["A", "B", "C"]


def test_in_the_background_takers_go_first_and_the_long_one_starts_once_they_finished() -> None:
    ran: list[str] = []
    lock = threading.Lock()
    release_rest = threading.Event()
    beside_started_after: list[list[str]] = []

    def record(name: str) -> Callable[[Any], None]:
        def run(_: Any) -> None:
            if name == "rest":
                assert release_rest.wait(WAIT)
            with lock:
                if name == "long":
                    beside_started_after.append(list(ran))
                ran.append(name)
        return run

    scenarios = [scenario("rest", record("rest")), scenario("take1", record("take1"), takes=True),
                 scenario("take2", record("take2"), takes=True), scenario("long", record("long"), takes=True,
                                                                            beside=True)]
    lanes, session = lane(scenarios)
    lanes.start()
    lanes.result("long")
    # The long one ran beside "rest" (still held back), after both takers: tasks are taken in order.
    assert beside_started_after == [["take1", "take2"]]
    release_rest.set()
    lanes.result("rest")
    assert ran == ["take1", "take2", "long", "rest"]
    # Their requests go before the background probes'.
    assert {"sddc-scenarios", "sddc-long"} <= session.target.urgent_threads


def test_while_the_lane_runs_the_gil_changes_hands_more_often_and_stop_restores_it() -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    lanes, _ = lane([scenario("A", lambda s: seen.append(sys.getswitchinterval()))])
    lanes.start()
    lanes.result("A")
    assert seen == [pytest.approx(SWITCH_INTERVAL)] and before > SWITCH_INTERVAL
    lanes.stop()
    assert sys.getswitchinterval() == pytest.approx(before)
    lanes.stop()  # twice: still the process's own value
    assert sys.getswitchinterval() == pytest.approx(before)


def test_one_at_a_time_leaves_the_gil_alone() -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    lanes, _ = lane([scenario("A", lambda s: seen.append(sys.getswitchinterval()))])
    lanes.result("A")
    lanes.stop()
    assert seen == [pytest.approx(before)] and sys.getswitchinterval() == pytest.approx(before)


def test_the_long_one_waits_for_the_others_before_its_last_step() -> None:
    order: list[str] = []
    release = threading.Event()
    lanes: ScenarioLane

    def slow(_: Any) -> None:
        assert release.wait(WAIT)
        order.append("other")

    def long(_: Any) -> None:
        order.append("long: steps")
        release.set()
        lanes.after_others("long")
        order.append("long: re-read everything")

    lanes, _ = lane([scenario("other", slow), scenario("long", long, beside=True)])
    lanes.start()
    lanes.result("long")
    assert order == ["long: steps", "other", "long: re-read everything"]


def test_a_scenario_s_exception_reaches_its_item() -> None:
    def spent(_: Any) -> None:
        raise BudgetExhausted("the request budget of 5 is spent")

    ran: list[str] = []
    lanes, _ = lane([scenario("A", spent), scenario("B", lambda s: ran.append("B"))])
    lanes.start()
    with pytest.raises(BudgetExhausted):
        lanes.result("A")
    # A spent budget does not end the lane: the next scenario says so for itself.
    lanes.result("B")
    assert ran == ["B"]


def test_what_ends_the_run_ends_every_scenario_still_waited_for() -> None:
    stopped = TargetStoppedAnswering("the target stopped answering")
    ran: list[str] = []

    def dies(_: Any) -> None:
        raise stopped

    lanes, _ = lane([scenario("A", dies, takes=True), scenario("B", lambda s: ran.append("B"))])
    lanes.start()
    for rid in ("A", "B"):
        with pytest.raises(TargetStoppedAnswering) as caught:
            lanes.result(rid)
        assert caught.value is stopped
    assert ran == []


def test_stop_halts_the_target_waits_for_the_lane_and_ends_what_never_ran() -> None:
    started = threading.Event()

    def sends(session: FakeSession) -> None:
        started.set()
        # A request of the scenario under way meets the halt and raises it.
        assert session.target.halted.wait(WAIT)
        raise Interrupted("the run ended")

    lanes, session = lane([scenario("A", sends), scenario("B", lambda s: None)])
    lanes.start()
    assert started.wait(WAIT)
    lanes.stop()
    assert isinstance(session.target.halts[0], Interrupted) and session.target.halts[-1] is None
    for rid in ("A", "B"):
        with pytest.raises(Interrupted):
            lanes.result(rid)


def test_stop_ends_the_lane_even_when_the_scenario_under_way_ends_normally() -> None:
    started = threading.Event()
    events: list[str] = []

    def a(session: FakeSession) -> None:
        started.set()
        assert session.target.halted.wait(WAIT)  # it caught the halt and ended, as a scenario may
        time.sleep(0.05)  # not a measurement: it makes a stop() that returns without waiting visible
        events.append("A ended")

    lanes, _ = lane([scenario("A", a), scenario("B", lambda s: events.append("B"))])
    lanes.start()
    assert started.wait(WAIT)
    lanes.stop()
    assert events == ["A ended"]  # waited for A; B never started
    lanes.result("A")
    with pytest.raises(Interrupted):
        lanes.result("B")


def test_stop_after_the_lane_finished_halts_nothing() -> None:
    lanes, session = lane([scenario("A", lambda s: None)])
    lanes.start()
    lanes.result("A")
    for thread in lanes._threads:
        thread.join(WAIT)
    lanes.stop()
    assert session.target.halts == []


def test_start_after_an_item_ran_scenarios_one_at_a_time_starts_nothing() -> None:
    ran: list[str] = []
    lanes, _ = lane([scenario("A", lambda s: ran.append("A")), scenario("B", lambda s: ran.append("B"))])
    lanes.result("A")
    lanes.start()
    assert lanes._threads == []
    lanes.result("B")
    assert ran == ["A", "B"]


def test_ctrl_c_in_a_scenario_stops_the_lane() -> None:
    def interrupted(session: FakeSession) -> None:
        raise KeyboardInterrupt

    lanes, _ = lane([scenario("A", interrupted)])
    lanes.start()
    with pytest.raises(KeyboardInterrupt):
        lanes.result("A")
    assert sys.getswitchinterval() == pytest.approx(0.005)  # stopped: the process's setting is back


def test_the_long_one_does_not_start_while_a_taker_runs() -> None:
    release, long_started = threading.Event(), threading.Event()
    events: list[str] = []

    def take(session: FakeSession) -> None:
        assert release.wait(WAIT)
        events.append("take")

    def long(session: FakeSession) -> None:
        long_started.set()
        events.append("long")

    lanes, _ = lane([scenario("take", take, takes=True), scenario("long", long, takes=True, beside=True)])
    lanes.start()
    assert not long_started.wait(0.2)  # a bound on how long we look, not a measurement
    release.set()
    lanes.result("long")
    assert events == ["take", "long"]


def queued(holds: TaskHolds, count: int) -> None:
    """Wait until `count` parties wait in the holds' queue."""
    deadline = time.monotonic() + WAIT
    while len(holds._waiting) < count and time.monotonic() < deadline:
        time.sleep(0.005)  # polling for a state, not measuring time
    assert len(holds._waiting) == count


def test_a_hold_waits_for_an_overlapping_one_and_not_for_a_disjoint_one() -> None:
    holds = TaskHolds()
    events: list[str] = []
    entered = threading.Event()

    def second(ids: list[str], name: str) -> threading.Thread:
        def run() -> None:
            with holds.hold(ids):
                events.append(name)
                entered.set()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with holds.hold(["t1", "t2"]):
        disjoint = second(["t3"], "disjoint")
        disjoint.join(WAIT)
        assert events == ["disjoint"]
        entered.clear()
        overlapping = second(["t2", "t4"], "overlapping")
        # It cannot get in while t2 is held: the only way it could be in the list is a broken hold.
        assert not entered.wait(0.2)
        events.append("released")
    overlapping.join(WAIT)
    assert events == ["disjoint", "released", "overlapping"]


def test_overlapping_holds_get_in_in_the_order_they_asked() -> None:
    # A party needing two tasks is not overtaken by a later one needing only the free one of them.
    holds = TaskHolds()
    events: list[str] = []

    def party(ids: list[str], name: str) -> threading.Thread:
        def run() -> None:
            with holds.hold(ids):
                events.append(name)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with holds.hold(["a"]):
        both = party(["a", "b"], "both")
        queued(holds, 1)
        later = party(["b"], "later")
        queued(holds, 2)
        unrelated = party(["c"], "unrelated")
        unrelated.join(WAIT)
        assert events == ["unrelated"]  # b is free, but the party that asked for it first waits for a
        events.append("released")
    both.join(WAIT)
    later.join(WAIT)
    assert events == ["unrelated", "released", "both", "later"]
    assert holds._waiting == []


class Interrupt(Exception):
    pass


def test_a_party_interrupted_while_waiting_lets_the_ones_behind_it_in() -> None:
    holds = TaskHolds()
    events: list[str] = []
    outcome: list[BaseException] = []

    def first() -> None:
        try:
            with holds.hold(["a", "b"]):
                events.append("first")
        except Interrupt as exc:
            outcome.append(exc)

    def later() -> None:
        with holds.hold(["b"]):
            events.append("later")

    with holds.hold(["a"]):
        one = threading.Thread(target=first)
        one.start()
        queued(holds, 1)
        two = threading.Thread(target=later)
        two.start()
        queued(holds, 2)
        # Ctrl-C reaches the first party while it waits (delivered when it next wakes up) ...
        assert one.ident is not None
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(one.ident), ctypes.py_object(Interrupt))
        with holds._changed:  # ... which a wake-up of the longest waiter, itself, does
            holds._changed.notify(1)
        one.join(WAIT)
        # ... and the party behind it, needing only the free task, gets in while "a" is still held.
        two.join(WAIT)
        assert events == ["later"] and len(outcome) == 1
    assert holds._waiting == []


def test_a_freed_slot_goes_to_an_urgent_request_before_queued_background_ones() -> None:
    slots = _Slots(1)
    slots.acquire(urgent=False)
    got: list[str] = []
    lock = threading.Lock()

    def take(name: str, urgent: bool) -> threading.Thread:
        def run() -> None:
            slots.acquire(urgent=urgent)
            with lock:
                got.append(name)
            slots.release()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    background = [take(f"probe{i}", False) for i in range(3)]
    urgent = take("scenario step", True)
    # Wait until the urgent request is queued (counted), then free the one slot.
    for _ in range(1000):
        with slots._changed:
            if slots._urgent_waiting:
                break
        threading.Event().wait(0.005)
    slots.release()
    for thread in [*background, urgent]:
        thread.join(WAIT)
    assert got[0] == "scenario step" and len(got) == 4


def test_slots_cap_the_requests_in_flight() -> None:
    slots = _Slots(2)
    in_flight = peak = 0
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def run() -> None:
        nonlocal in_flight, peak
        barrier.wait(WAIT)
        for _ in range(50):
            slots.acquire(urgent=False)
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            with lock:
                in_flight -= 1
            slots.release()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert 1 <= peak <= 2


def test_starting_the_lane_lets_one_thread_at_a_time_parse_an_ast() -> None:
    import ast

    from conformance import threads as lanes_module

    lanes, _ = lane([scenario("A", lambda s: None)])
    lanes.start()
    lanes.result("A")
    assert getattr(ast.parse, "_serialized", False)
    serialize_twice = ast.parse
    lanes_module.serialize_ast_parsing()
    assert ast.parse is serialize_twice  # installed once, not wrapped again
    parsed = threading.Event()

    def parse_beside() -> None:
        ast.parse("x = 1")
        parsed.set()

    with lanes_module._AST_LOCK:
        thread = threading.Thread(target=parse_beside)
        thread.start()
        # While another thread builds an AST, this one waits (the only way to be set is no lock).
        assert not parsed.wait(0.2)
    thread.join(WAIT)
    assert parsed.is_set()

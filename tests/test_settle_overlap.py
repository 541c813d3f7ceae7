"""Settle windows side by side: PendingSettles, the state machine handing its pending cancels over,
the race judged on the earlier scenarios' cancel mode, and the lane starting each taker once the one
before has taken its tasks. Ordered by events and an injected clock, never by the wall clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from scenario_harness import (
    FakeClock,
    Reference,
    ScriptedTarget,
    messages,
    outcome,
    references,
    scripted_session,
)
from test_lanes import WAIT, lane, scenario

from conformance.errors import BudgetExhausted, Interrupted
from conformance.model import Outcome
from conformance.requirements import scenarios, stateful
from conformance.requirements.scenarios import CancelLedger, PendingSettles, Settling, settle_violation
from conformance.tasks import CANCELLED

RID = "BEH-STATEFUL"


def judged_list() -> tuple[list[Settling], Callable[[Settling], None]]:
    judged: list[Settling] = []
    lock = threading.Lock()

    def judge(settling: Settling) -> None:
        with lock:
            judged.append(settling)

    return judged, judge


# -- PendingSettles -----------------------------------------------------------------------------------
def test_pending_settles_wait_side_by_side_and_a_never_settling_cancel_fails_with_its_timeline() -> None:
    b_read = threading.Event()

    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        if task_id == "a":
            # a's first read waits for b's: one after the other, this would never come.
            assert b_read.wait(WAIT), "the settles did not run side by side"
        else:
            b_read.set()
        return ...

    target = ScriptedTarget({"a": "IN_PROGRESS", "b": CANCELLED}, on_get=on_get)
    clock = FakeClock()
    session = scripted_session(target, clock=clock, settle_timeout=5.0)
    settles = PendingSettles(session)
    judged, judge = judged_list()
    settles.add("a", "p", 0.0, judge)
    settles.add("b", "p", 0.0, judge)
    settles.resolve()
    by_task = {s.task_id: s for s in judged}
    assert set(by_task) == {"a", "b"}
    assert by_task["b"].settled and not by_task["a"].settled
    text = str(settle_violation(by_task["a"], 5.0))
    assert "task a reads IN_PROGRESS, not CANCELLED, when the 5 s settle window closed" in text
    assert "(reads: 0.00s IN_PROGRESS, " in text and target.gets("a") > 2  # read with backoff to the end
    assert [t for t, _, _ in session.cancels.observations] == ["b"]


def test_resolve_reraises_what_a_settle_raised_after_every_settle_ended() -> None:
    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        if task_id == "spent":
            raise BudgetExhausted("the request budget of 5 is spent")
        return ...

    target = ScriptedTarget({"spent": "IN_PROGRESS", "ok": CANCELLED}, on_get=on_get)
    session = scripted_session(target, clock=FakeClock())
    settles = PendingSettles(session)
    judged, judge = judged_list()
    settles.add("spent", "p", 0.0, judge)
    settles.add("ok", "p", 0.0, judge)
    with pytest.raises(BudgetExhausted):
        settles.resolve()
    assert [s.task_id for s in judged] == ["ok"]
    settles.resolve()  # raised once: nothing left


def test_the_race_is_judged_on_the_cancel_mode_of_the_tasks_named() -> None:
    ledger = CancelLedger()
    ledger.observations += [("cancel", 0.0, True), ("model", 2.5, False)]
    assert not ledger.asynchronous_among(["cancel"])  # BEH-CANCEL's settled at once
    assert ledger.asynchronous_among(["cancel", "model"])
    assert not ledger.asynchronous_among([])


# -- the state machine hands its pending cancels over -------------------------------------------------
@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., Reference]]:
    with references(settle_seconds=1.0) as get:
        yield get


def recording_settles(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Settling]]:
    added: list[str] = []
    judged: list[Settling] = []

    class Recording(PendingSettles):
        def add(self, task_id: str, purpose: str, since: float, judge: Callable[[Settling], None]) -> None:
            added.append(task_id)

            def recorded(settling: Settling) -> None:
                judged.append(settling)
                judge(settling)

            super().add(task_id, purpose, since, recorded)

    monkeypatch.setattr(stateful, "PendingSettles", Recording)
    return added, judged


def test_every_pending_cancel_of_the_state_machine_is_judged_before_its_verdict(
        servers: Callable[..., Reference], monkeypatch: pytest.MonkeyPatch) -> None:
    added, judged = recording_settles(monkeypatch)
    session = servers("async-cancel-repeat-200").session(statuses=["SUCCESSFUL", "FAILED"])
    stateful.run_model(session)
    assert added, "no example ended on a pending cancel"
    assert sorted(s.task_id for s in judged) == sorted(added)  # every one, before run_model returned
    assert all(s.settled for s in judged) and outcome(session, RID) is Outcome.PASS


def test_a_handed_over_cancel_that_never_settles_fails_with_its_reads_and_steps(
        servers: Callable[..., Reference], monkeypatch: pytest.MonkeyPatch) -> None:
    added, judged = recording_settles(monkeypatch)
    session = servers("cancel-never-settles").session(statuses=["SUCCESSFUL"])
    stateful.run_model(session)
    assert added and len(judged) == len(added)
    texts = messages(session, RID)
    for task_id in added:
        assert any(t.startswith(f"after a 200 cancel, task {task_id} reads IN_PROGRESS, not CANCELLED, when the "
                                "5 s settle window closed (reads: ") and "(steps: " in t for t in texts), texts
    assert outcome(session, RID) is Outcome.FAIL


# -- the lane: each taker once the one before has taken its tasks -----------------------------------------
def test_a_taker_that_took_its_tasks_lets_the_next_start_while_it_waits() -> None:
    release = threading.Event()
    events: list[str] = []
    lock = threading.Lock()

    def note(text: str) -> None:
        with lock:
            events.append(text)

    def first(_: Any) -> None:
        lanes.taken("first")
        assert release.wait(WAIT)  # its settle window
        note("first settled")

    def second(_: Any) -> None:
        note("second took")
        lanes.taken("second")
        lanes.after("first")  # its verdict needs what the first saw
        note("second judged")

    def long(_: Any) -> None:
        note("long")

    lanes, _ = lane([scenario("first", first, takes=True), scenario("second", second, takes=True),
                     scenario("long", long, takes=True, beside=True)])
    lanes.start()
    lanes.result("long")  # started once both had taken theirs, while the first still waits
    assert events == ["second took", "long"]
    release.set()
    lanes.result("second")
    assert events == ["second took", "long", "first settled", "second judged"]


def test_stop_wakes_a_scenario_waiting_for_a_taker_that_never_took() -> None:
    started = threading.Event()
    ran: list[str] = []

    def stuck(session: Any) -> None:
        started.set()
        assert session.target.halted.wait(WAIT)
        raise Interrupted("the run ended")

    lanes, _ = lane([scenario("A", stuck, takes=True), scenario("B", lambda s: ran.append("B"), takes=True)])
    lanes.start()
    assert started.wait(WAIT)
    lanes.stop()  # returns: B's thread, waiting for A to take, woke up and ended
    assert ran == []


def test_stop_ends_a_chain_of_takers_whose_first_ended_normally() -> None:
    started = threading.Event()
    ran: list[str] = []

    def first(session: Any) -> None:
        started.set()
        assert session.target.halted.wait(WAIT)  # ends normally, but the run is stopping

    lanes, _ = lane([scenario("A", first, takes=True), scenario("B", lambda s: ran.append("B"), takes=True),
                     scenario("C", lambda s: ran.append("C"), takes=True)])
    lanes.start()
    assert started.wait(WAIT)
    stopping = threading.Thread(target=lanes.stop, daemon=True)
    stopping.start()
    stopping.join(WAIT)
    # B never ran, so never took: C, waiting for it, must still wake and end.
    assert not stopping.is_alive() and ran == []


def test_a_settle_of_an_urgent_scenario_stays_urgent() -> None:
    class Urgent(ScriptedTarget):
        def __init__(self, tasks: dict[str, str]) -> None:
            super().__init__(tasks)
            self.urgent_threads: list[str] = []

        def is_urgent(self) -> bool:
            return True

        def urgent(self) -> None:
            self.urgent_threads.append(threading.current_thread().name)

    target = Urgent({"a": CANCELLED})
    settles = PendingSettles(scripted_session(target, clock=FakeClock()))
    settles.add("a", "p", 0.0, lambda settling: None)
    settles.resolve()
    assert target.urgent_threads == ["sddc-settle-a"]


# -- the scenarios that build on BEH-CANCEL, now beside it ----------------------------------------------
def test_recancel_takes_beh_cancel_s_task_even_when_another_settled_first() -> None:
    target = ScriptedTarget({"c": "IN_PROGRESS", "x": CANCELLED})
    session = scripted_session(target, clock=FakeClock())
    session.cancelled_by_suite.append("c")  # BEH-CANCEL's 200; it never read CANCELLED
    session.cancels.observations.append(("x", 0.0, True))  # another scenario's, settled first
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is Outcome.NOT_RUN
    assert target.deletes() == 0


def test_two_race_winners_on_a_synchronous_target_fail_whatever_later_cancels_showed() -> None:
    def wins(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = CANCELLED
        return 200  # every racing cancel wins, and the task reads CANCELLED right away

    target = ScriptedTarget({"r": "IN_PROGRESS"}, on_delete=wins)
    session = scripted_session(target, clock=FakeClock())
    # A cancel the state machine saw settle late (it runs beside the race now): not the race's
    # evidence, which is what BEH-CANCEL and BEH-RECANCEL saw before it.
    session.cancels.observations.append(("model", 2.0, False))
    scenarios.racing_cancels(session)
    assert outcome(session, "BEH-RACE") is Outcome.FAIL
    assert any("the target cancels synchronously" in m for m in messages(session, "BEH-RACE"))

"""Each behaviour scenario run on its own, with its exact verdict asserted.

Against the embedded reference server (one per set of defects, shared by the module; its delayed
changes and the session's polling run on one injected clock, so nothing waits on the wall clock)
and against a scripted target for what no reference defect does (no GET, dropped answers, a task
finishing in the middle of a scenario). The pure judgements get tables of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from scenario_harness import (
    FakeClock,
    Reference,
    ScriptedTarget,
    evidence,
    messages,
    outcome,
    references,
    result,
    scripted_session,
    stop_all,
)

from conformance.model import Outcome
from conformance.requirements import get, scenarios
from conformance.requirements.scenarios import (
    CancelLedger,
    Reading,
    Settling,
    judge_race,
    settle_violation,
    unchanged,
)
from conformance.tasks import STATUSES

PASS, FAIL, NOT_RUN = Outcome.PASS, Outcome.FAIL, Outcome.NOT_RUN
OTHERS = tuple(s for s in STATUSES if s != "IN_PROGRESS")


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., Reference]]:
    """`servers("defect", ...)`: the module's reference server with exactly those defects."""
    # A wide race window: racing cancels must overlap even on a loaded machine.
    with references(settle_seconds=1.0, race_window=0.2) as get:
        yield get


@pytest.fixture
def fresh() -> Iterator[Callable[..., Reference]]:
    """A server of the test's own, for defects that pick the first seeded tasks."""
    started: list[Reference] = []

    def start(*defects: str, **config: Any) -> Reference:
        started.append(Reference(defects, **config))
        return started[-1]

    yield start
    stop_all(started)


def reading(status: str | None, http_status: int | None = 200) -> Reading:
    return Reading(None, status, http_status)  # type: ignore[arg-type]


# -- BEH-CANCEL -------------------------------------------------------------------------------------
def test_cancel_passes_and_records_a_synchronous_settle(servers: Callable[..., Reference]) -> None:
    ref = servers()
    session = ref.session(in_progress=1, provision=False)
    task_id = session.pool.given["IN_PROGRESS"][0]
    waits = len(ref.clock.sleeps)
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is PASS
    assert result(session, "BEH-CANCEL").evaluations == 1
    assert len(ref.clock.sleeps) == waits  # read CANCELLED at once: nothing waited for
    assert ref.status(task_id) == "CANCELLED" and ref.deletes_of(task_id) == 1
    assert session.cancelled_by_suite == [task_id]
    assert session.cancels.observations == [(task_id, 0.0, True)]
    assert session.cancels.touched == {task_id: ("BEH-CANCEL", "CANCELLED")}
    assert list(session.cancels.since[task_id]) == [(True, "CANCELLED")]  # cancelled by a 200
    assert session.cancels.mode() == {"mode": "synchronous", "settle_seconds": None}


def test_cancel_without_any_in_progress_task_is_not_run() -> None:
    session = scripted_session(ScriptedTarget({"a": "SUCCESSFUL"}))
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is NOT_RUN
    assert result(session, "BEH-CANCEL").reason == scenarios.NO_IN_PROGRESS
    assert session.target.deletes() == 0


def test_cancel_uses_a_provisioned_task_when_none_is_given() -> None:
    target = ScriptedTarget()
    session = scripted_session(target, provision=True)
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is PASS
    assert target.created == 1 and list(target.tasks.values()) == ["CANCELLED"]


def test_cancel_answered_204_fails_with_the_status(servers: Callable[..., Reference]) -> None:
    session = servers("wrong-success-status").session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is FAIL
    assert messages(session, "BEH-CANCEL") == [f"cancelling IN_PROGRESS task {task_id} answered 204, not 200"]
    assert evidence(session, "BEH-CANCEL")[0].response.status == 204  # type: ignore[union-attr]
    assert session.cancelled_by_suite == []


def test_cancel_without_an_answer_names_the_error() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=lambda t, i: None)
    session = scripted_session(target)
    scenarios.cancel_in_progress(session)
    assert messages(session, "BEH-CANCEL") == ["cancelling IN_PROGRESS task a answered connection reset, not 200"]


def test_cancel_not_applied_fails_when_the_settle_window_closes(servers: Callable[..., Reference]) -> None:
    ref = servers("cancel-not-applied")
    session = ref.session(in_progress=1, settle_timeout=3.0)
    task_id = session.pool.given["IN_PROGRESS"][0]
    start = ref.clock.now
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is FAIL
    [text] = messages(session, "BEH-CANCEL")
    assert text.startswith(f"after a 200 cancel, task {task_id} reads IN_PROGRESS, not CANCELLED, "
                           "when the 3 s settle window closed (reads: 0.00s IN_PROGRESS, 0.10s IN_PROGRESS")
    assert ref.clock.now - start == pytest.approx(3.0)
    assert session.cancelled_by_suite == [task_id] and session.cancels.observations == []


def test_forgotten_cancelled_task_fails_and_is_remembered_as_gone(servers: Callable[..., Reference]) -> None:
    session = servers("forget-cancelled").session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.cancel_in_progress(session)
    assert messages(session, "BEH-CANCEL") == [
        f"after a 200 cancel, task {task_id} ended as GET answered 404, not CANCELLED (reads: 0.00s GET answered 404)"]
    assert session.cancels.gone == [task_id]


def test_asynchronous_cancel_passes_and_reports_its_settle_time(servers: Callable[..., Reference]) -> None:
    ref = servers("async-cancel-repeat-200")  # settles 1 s after the 200
    session = ref.session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is PASS
    assert session.cancels.observations == [(task_id, pytest.approx(1.5), False)]
    assert session.cancels.asynchronous
    assert session.cancels.mode() == {"mode": "asynchronous", "settle_seconds": 1.5}


def test_cancel_of_a_target_without_get_is_not_run() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_get=lambda t, i: 405)
    session = scripted_session(target)
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is NOT_RUN
    assert result(session, "BEH-CANCEL").reason == (
        "the cancel answered 200, but the target has no GET /v1/tasks/{id} (GET answered 405) to show its effect")


def test_cancel_after_a_readable_precondition_fails_when_get_then_stops(servers: Callable[..., Reference]) -> None:
    # The precondition read the task; a 200 whose effect can no longer be read is a failure, not NOT RUN.
    reads: list[str] = []

    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        reads.append(task_id)
        return ... if len(reads) == 1 else 503

    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_get=on_get))
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is FAIL
    assert messages(session, "BEH-CANCEL") == [
        "after a 200 cancel, task a ended as GET answered 503, not CANCELLED (reads: 0.00s GET answered 503)"]


def a_finishes_when_cancelled(target: ScriptedTarget, task_id: str) -> Any:
    """Task "a" finishes (SUCCESSFUL) just as its cancel arrives and refuses it; others as scripted."""
    if task_id == "a":
        target.tasks["a"] = "SUCCESSFUL"
        return 409
    return ...


def test_a_409_from_a_task_that_finished_meanwhile_takes_another_task() -> None:
    # The first task finishes between its precondition read and the cancel: 409 is right, and
    # another task is used.
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=a_finishes_when_cancelled)
    session = scripted_session(target)
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is PASS
    assert target.tasks == {"a": "SUCCESSFUL", "b": "CANCELLED"}
    assert any("task a finished (SUCCESSFUL) between its precondition read and the cancel" in n for n in session.notes)


def test_a_409_from_a_task_still_in_progress_fails() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=lambda t, i: 409)
    session = scripted_session(target)
    scenarios.cancel_in_progress(session)
    assert messages(session, "BEH-CANCEL") == ["cancelling IN_PROGRESS task a answered 409, not 200"]
    assert target.deletes("b") == 0


@pytest.mark.parametrize("after", ["CANCELLED", "PENDING"])
def test_a_409_then_a_status_that_is_not_finished_fails(after: str) -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = after
        return 409

    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=on_delete))
    scenarios.cancel_in_progress(session)
    assert messages(session, "BEH-CANCEL") == ["cancelling IN_PROGRESS task a answered 409, not 200"]
    assert session.notes == []


def test_cancel_gives_up_after_max_acquire_tasks_finishing_meanwhile() -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = "FAILED"
        return 409

    target = ScriptedTarget(on_delete=on_delete)
    session = scripted_session(target, provision=True)
    scenarios.cancel_in_progress(session)
    assert target.deletes() == scenarios.MAX_ACQUIRE
    assert outcome(session, "BEH-CANCEL") is NOT_RUN


def test_a_task_that_finishes_on_its_first_read_is_never_cancelled(fresh: Callable[..., Reference]) -> None:
    ref = fresh("task-finishes-before-use")
    finishing = ref.server.service.finishes_on_read
    session = ref.session(given=ref.seeded(), provision=False)
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is PASS
    assert ref.status(finishing) == "SUCCESSFUL"
    assert session.cancelled_by_suite != [finishing]
    assert any(f"task {finishing} finished (SUCCESSFUL)" in n for n in session.notes)


# -- acquire_in_progress ----------------------------------------------------------------------------
def test_acquire_skips_a_task_that_no_longer_reads_in_progress() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    session = scripted_session(target)
    target.tasks["a"] = "SUCCESSFUL"
    acquired = scenarios.acquire_in_progress(session, "p")
    assert acquired is not None and acquired[0] == "b"
    assert acquired[1] is not None and acquired[1].status == "IN_PROGRESS"
    assert session.notes == ["task a was handed over as IN_PROGRESS but reads SUCCESSFUL; not used"]
    assert target.deletes() == 0


def test_acquire_without_get_hands_the_task_over_unread() -> None:
    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_get=lambda t, i: 404))
    assert scenarios.acquire_in_progress(session, "p") == ("a", None)
    assert scenarios.acquire_in_progress(session, "p") is None


def test_acquire_gives_up_after_max_acquire_tasks() -> None:
    target = ScriptedTarget(on_get=lambda t, i: (t.tasks.__setitem__(i, "FAILED"), ...)[1])
    session = scripted_session(target, provision=True)
    assert scenarios.acquire_in_progress(session, "p") is None
    assert target.created == scenarios.MAX_ACQUIRE


def test_uncancellable_tasks_are_judged_then_skipped(fresh: Callable[..., Reference]) -> None:
    ref = fresh("non-cancellable-in-progress")
    uncancellable = sorted(ref.server.service.uncancellable)
    session = ref.session(given={"IN_PROGRESS": uncancellable}, provision=False)
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is NOT_RUN
    assert result(session, "BEH-CANCEL").reason == scenarios.no_task_reason(session)
    assert "isCancellable:false" in result(session, "BEH-CANCEL").reason
    assert sorted(session.cancels.uncancellable) == uncancellable
    assert outcome(session, "BEH-NOT-CANCELLABLE") is PASS
    assert result(session, "BEH-NOT-CANCELLABLE").evaluations == 2
    assert all(ref.status(t) == "IN_PROGRESS" for t in uncancellable)
    assert {t: session.cancels.touched[t] for t in uncancellable} == {
        t: ("BEH-NOT-CANCELLABLE", "IN_PROGRESS") for t in uncancellable}
    # with more tasks at hand, the scenario carries on with a cancellable one
    more = ref.session(given={"IN_PROGRESS": [*uncancellable, *ref.server.create_tasks("IN_PROGRESS", 1)]},
                       provision=False)
    scenarios.cancel_in_progress(more)
    assert outcome(more, "BEH-CANCEL") is PASS


def _uncancellable_target(on_delete: Callable[[ScriptedTarget, str], Any]) -> ScriptedTarget:
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=on_delete)
    plain_get = target.get_task

    def get_task(task_id: str, *, purpose: str) -> Any:
        exchange = plain_get(task_id, purpose=purpose)
        if exchange.response is not None and exchange.response.status == 200:
            body = {"id": task_id, "status": target.tasks[task_id], "isCancellable": False}
            object.__setattr__(exchange.response, "body", json.dumps(body).encode())
        return exchange

    target.get_task = get_task  # type: ignore[method-assign]
    return target


@pytest.mark.parametrize(
    ("on_delete", "expected"),
    [
        (lambda t, i: 409, []),
        (lambda t, i: (t.tasks.__setitem__(i, "CANCELLED"), 200)[1],
         ["cancelling IN_PROGRESS task a, which says isCancellable false, answered 200, not 409",
          "task a (isCancellable false) reads CANCELLED after the cancel"]),
        (lambda t, i: (t.tasks.pop(i), 409)[1], ["task a (isCancellable false) is gone after the cancel"]),
        (lambda t, i: None, ["cancelling IN_PROGRESS task a, which says isCancellable false, answered "
                             "connection reset, not 409"]),
    ],
)
def test_judge_uncancellable(on_delete: Callable[[ScriptedTarget, str], Any], expected: list[str]) -> None:
    target = _uncancellable_target(on_delete)
    session = scripted_session(target)
    before = scenarios.read(session, "a", "p")
    assert before.cancellable is False
    scenarios.judge_uncancellable(session, "a", before, "p")
    assert outcome(session, "BEH-NOT-CANCELLABLE") is (FAIL if expected else PASS)
    assert messages(session, "BEH-NOT-CANCELLABLE") == expected


def test_judge_uncancellable_without_a_readable_precondition_ignores_a_404() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=lambda t, i: 409, on_get=lambda t, i: 404)
    session = scripted_session(target)
    scenarios.judge_uncancellable(session, "a", reading(None, 404), "p")
    assert outcome(session, "BEH-NOT-CANCELLABLE") is PASS


def test_reading_keeps_only_a_boolean_is_cancellable() -> None:
    target = _uncancellable_target(lambda t, i: 409)
    session = scripted_session(target)
    assert scenarios.read(session, "a", "p").cancellable is False
    plain = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}))
    got = scenarios.read(plain, "a", "p")
    assert got.cancellable is None and got.status == "IN_PROGRESS" and got.available


def test_a_200_without_a_known_status_is_no_reading() -> None:
    target = ScriptedTarget({"a": "SOMETHING ELSE"})
    session = scripted_session(target, given={"IN_PROGRESS": ["a"]})
    got = scenarios.read(session, "a", "p")
    assert got.http_status == 200 and got.status is None
    assert not got.available and got.describe() == "GET answered 200"
    # so the task is used as handed over, unread
    assert scenarios.acquire_in_progress(session, "p") == ("a", None)


# -- BEH-RECANCEL -----------------------------------------------------------------------------------
def test_recancel_reuses_the_task_beh_cancel_settled(servers: Callable[..., Reference]) -> None:
    ref = servers()
    session = ref.session(in_progress=2, provision=False)
    first = session.pool.given["IN_PROGRESS"][0]
    scenarios.cancel_in_progress(session)
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is PASS
    assert ref.deletes_of(first) == 2  # no second task was used
    assert ref.deletes_of(session.pool.given["IN_PROGRESS"][1]) == 0
    assert session.cancels.touched[first] == ("BEH-RECANCEL", "CANCELLED")
    # BEH-CANCEL's cancel and BEH-RECANCEL's refusal: the task shows both kinds when re-read.
    assert list(session.cancels.since[first]) == [(True, "CANCELLED"), (False, "CANCELLED")]
    assert evidence(session, "BEH-RECANCEL") == []


def test_recancel_after_an_unsettled_cancel_is_not_run(servers: Callable[..., Reference]) -> None:
    ref = servers("cancel-not-applied")
    session = ref.session(in_progress=2, provision=False, settle_timeout=1.0)
    first = session.pool.given["IN_PROGRESS"][0]
    scenarios.cancel_in_progress(session)
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is NOT_RUN
    assert result(session, "BEH-RECANCEL").reason == (
        f"task {first}, cancelled with 200, never read CANCELLED (see BEH-CANCEL)")


def test_recancel_of_a_forgotten_task_fails_twice(servers: Callable[..., Reference]) -> None:
    session = servers("forget-cancelled").session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.cancel_in_progress(session)
    scenarios.recancel(session)
    assert messages(session, "BEH-RECANCEL") == [
        f"cancelling task {task_id}, which already reads CANCELLED, answered 404, not 409",
        f"cancelled task {task_id} is gone: GET answered 404"]
    assert evidence(session, "BEH-RECANCEL")[0].response.status == 404  # type: ignore[union-attr]


def test_recancel_on_its_own_passes_on_a_faithful_server(servers: Callable[..., Reference]) -> None:
    ref = servers()
    session = ref.session(in_progress=1, provision=False)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is PASS
    assert ref.deletes_of(task_id) == 2 and session.cancelled_by_suite == [task_id]
    assert session.cancels.touched[task_id] == ("BEH-RECANCEL", "CANCELLED")
    assert list(session.cancels.since[task_id]) == [(True, "CANCELLED"), (False, "CANCELLED")]


def test_recancel_keeps_the_timeline_of_its_own_task_from_the_first_cancel_on() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"})
    session = scripted_session(target)
    session.started_monotonic = 0.0
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is PASS
    target.tasks["a"] = "FAILED"
    scenarios.reconcile(session)
    assert messages(session, "BEH-RECANCEL") == [
        "task a, left CANCELLED by this run, reads FAILED at the end of the run (timeline: 0.00s GET CANCELLED, "
        "0.00s DELETE 409, 0.00s GET CANCELLED, 2.00s GET FAILED)"]


def test_recancel_without_a_task_is_not_run() -> None:
    session = scripted_session(ScriptedTarget())
    scenarios.recancel(session)
    assert result(session, "BEH-RECANCEL").reason == scenarios.NO_IN_PROGRESS


def test_recancel_whose_first_cancel_is_not_200_is_not_run(servers: Callable[..., Reference]) -> None:
    session = servers("wrong-success-status").session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is NOT_RUN
    assert result(session, "BEH-RECANCEL").reason == f"the first cancel of {task_id} answered 204, not 200"
    assert session.cancelled_by_suite == []


def test_recancel_200_fails_with_the_repeat_as_evidence(servers: Callable[..., Reference]) -> None:
    session = servers("recancel-200").session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.recancel(session)
    assert messages(session, "BEH-RECANCEL") == [
        f"cancelling task {task_id}, which already reads CANCELLED, answered 200, not 409"]
    assert evidence(session, "BEH-RECANCEL")[0].response.status == 200  # type: ignore[union-attr]


def test_recancel_sees_a_cancelled_task_change_afterwards() -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        if target.tasks[task_id] == "CANCELLED":
            target.tasks[task_id] = "FAILED"
            return 409
        return ...

    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=on_delete))
    scenarios.recancel(session)
    assert messages(session, "BEH-RECANCEL") == ["cancelled task a now reads FAILED"]
    # the right 409 was not the fault: the read that showed the change is the evidence
    assert evidence(session, "BEH-RECANCEL")[0].request.method == "GET"  # type: ignore[union-attr]


@pytest.mark.parametrize("defect", ["async-cancel-repeat-200", "async-cancel-repeat-409"])
def test_recancel_accepts_either_answer_while_the_cancel_is_pending(servers: Callable[..., Reference],
                                                                    defect: str) -> None:
    ref = servers(defect)
    session = ref.session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is PASS
    assert ref.deletes_of(task_id) == 3  # first, repeat while pending, again once cancelled


def test_recancel_repeat_while_pending_must_be_200_or_409(servers: Callable[..., Reference]) -> None:
    answers = iter([200, 500])
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=lambda t, i: next(answers, 409))
    session = scripted_session(target)
    scenarios.recancel(session)
    assert messages(session, "BEH-RECANCEL") == [
        "a repeat cancel of a while its cancellation was pending answered 500, not 200 or 409"]
    assert evidence(session, "BEH-RECANCEL")[0].response.status == 500  # type: ignore[union-attr]


def test_recancel_of_a_cancel_that_never_settles_is_not_run(servers: Callable[..., Reference]) -> None:
    session = servers("cancel-never-settles").session(in_progress=1, settle_timeout=1.0)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.recancel(session)
    assert outcome(session, "BEH-RECANCEL") is NOT_RUN
    assert result(session, "BEH-RECANCEL").reason.startswith(
        f"task {task_id}, cancelled with 200, never read CANCELLED (reads: 0.00s IN_PROGRESS, 0.10s IN_PROGRESS")


@pytest.mark.parametrize(("after", "expected"), [
    (405, []), (501, []), (None, []),
    (500, ["cancelled task a is gone: GET answered 500"]),
])
def test_recancel_judges_the_read_after_the_second_cancel(after: int | None, expected: list[str]) -> None:
    reads: list[str] = []

    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        reads.append(task_id)
        return ... if len(reads) < 3 else after

    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_get=on_get))
    scenarios.recancel(session)
    assert messages(session, "BEH-RECANCEL") == expected
    assert outcome(session, "BEH-RECANCEL") is (FAIL if expected else PASS)


# -- BEH-NOT-CANCELLABLE ----------------------------------------------------------------------------
def test_not_cancellable_passes_for_every_status(servers: Callable[..., Reference]) -> None:
    ref = servers()
    session = ref.session(statuses=OTHERS)
    scenarios.not_cancellable(session)
    got = result(session, "BEH-NOT-CANCELLABLE")
    assert got.outcome is PASS and got.evaluations == len(OTHERS) and got.reason == f"{len(OTHERS)} evaluations"
    for status, task_id in session.pool.non_cancellable():
        assert ref.status(task_id) == status and ref.deletes_of(task_id) == 1
        assert session.cancels.touched[task_id] == ("BEH-NOT-CANCELLABLE", status)


def test_not_cancellable_names_the_statuses_it_did_not_exercise(servers: Callable[..., Reference]) -> None:
    session = servers().session(statuses=["SUCCESSFUL", "PENDING"])
    scenarios.not_cancellable(session)
    assert result(session, "BEH-NOT-CANCELLABLE").reason == (
        "2 evaluations; not exercised for FAILED, CANCELLED, COMPLETED_WITH_WARNING, SKIPPED (no such task given)")


def test_not_cancellable_without_tasks_is_not_run() -> None:
    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}))
    scenarios.not_cancellable(session)
    assert outcome(session, "BEH-NOT-CANCELLABLE") is NOT_RUN
    assert result(session, "BEH-NOT-CANCELLABLE").reason == (
        "no task in a non-cancellable status given: pass --task SUCCESSFUL=<id> (or PENDING, FAILED, CANCELLED, "
        "...) or --discover")
    assert session.target.deletes() == 0


def test_not_cancellable_judged_only_on_uncancellable_tasks_says_so(fresh: Callable[..., Reference]) -> None:
    ref = fresh("non-cancellable-in-progress")
    session = ref.session(given={"IN_PROGRESS": sorted(ref.server.service.uncancellable)}, provision=False)
    scenarios.cancel_in_progress(session)
    scenarios.not_cancellable(session)
    got = result(session, "BEH-NOT-CANCELLABLE")
    assert got.outcome is PASS
    assert got.reason == "2 evaluations; judged only on IN_PROGRESS tasks with isCancellable false"


@pytest.mark.parametrize(("defect", "expected"), [
    ("cancel-finished-task", ["cancelling SUCCESSFUL task {id} answered 200, not 409",
                              "SUCCESSFUL task {id} reads CANCELLED after the cancel"]),
    ("refused-cancel-changes-task", ["SUCCESSFUL task {id} reads CANCELLED after the cancel"]),
    ("vanish-after-409", ["SUCCESSFUL task {id} is gone after the cancel: GET answered 404"]),
])
def test_not_cancellable_defects(servers: Callable[..., Reference], defect: str, expected: list[str]) -> None:
    session = servers(defect).session(statuses=["SUCCESSFUL"])
    task_id = session.pool.given["SUCCESSFUL"][0]
    scenarios.not_cancellable(session)
    assert outcome(session, "BEH-NOT-CANCELLABLE") is FAIL
    assert messages(session, "BEH-NOT-CANCELLABLE") == [e.format(id=task_id) for e in expected]


def test_pending_tasks_must_refuse_too(servers: Callable[..., Reference]) -> None:
    session = servers("pending-cancellable").session(statuses=["PENDING", "SUCCESSFUL"])
    task_id = session.pool.given["PENDING"][0]
    scenarios.not_cancellable(session)
    assert messages(session, "BEH-NOT-CANCELLABLE") == [
        f"cancelling PENDING task {task_id} answered 200, not 409",
        f"PENDING task {task_id} reads CANCELLED after the cancel"]
    assert result(session, "BEH-NOT-CANCELLABLE").failures == 1


def test_a_task_given_as_finished_that_reads_in_progress_is_not_cancelled(servers: Callable[..., Reference]) -> None:
    ref = servers()
    [task_id] = ref.server.create_tasks("IN_PROGRESS", 1)
    session = ref.session(given={"SUCCESSFUL": [task_id]})
    scenarios.not_cancellable(session)
    assert ref.deletes_of(task_id) == 0 and ref.status(task_id) == "IN_PROGRESS"
    assert session.notes == [f"task {task_id} was given as SUCCESSFUL but reads IN_PROGRESS; not cancelled"]
    assert result(session, "BEH-NOT-CANCELLABLE").evaluations == 0


def test_a_task_read_in_another_status_is_judged_in_that_status(servers: Callable[..., Reference]) -> None:
    ref = servers("cancel-finished-task")
    [task_id] = ref.server.create_tasks("FAILED", 1)
    session = ref.session(given={"SKIPPED": [task_id]})
    scenarios.not_cancellable(session)
    assert messages(session, "BEH-NOT-CANCELLABLE")[0] == f"cancelling FAILED task {task_id} answered 200, not 409"


def test_not_cancellable_without_get_judges_the_answer_alone() -> None:
    target = ScriptedTarget({"a": "SUCCESSFUL", "b": "FAILED"}, on_get=lambda t, i: 405,
                            on_delete=lambda t, i: 409 if i == "a" else 200)
    session = scripted_session(target)
    scenarios.not_cancellable(session)
    assert messages(session, "BEH-NOT-CANCELLABLE") == ["cancelling FAILED task b answered 200, not 409"]
    assert session.cancels.touched == {}


def test_not_cancellable_a_finished_task_that_pends_again_fails() -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = "PENDING"
        return 409

    session = scripted_session(ScriptedTarget({"a": "SUCCESSFUL"}, on_delete=on_delete))
    scenarios.not_cancellable(session)
    assert messages(session, "BEH-NOT-CANCELLABLE") == ["SUCCESSFUL task a reads PENDING after the cancel"]


# -- judge_known_refusal ----------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "after", "expected"), [
    (409, "SUCCESSFUL", []),
    (409, "CANCELLED", ["SUCCESSFUL task a reads CANCELLED after the cancel"]),
    (200, "CANCELLED", ["cancelling SUCCESSFUL task a answered 200, not 409",
                        "SUCCESSFUL task a reads CANCELLED after the cancel"]),
    (409, None, ["SUCCESSFUL task a is gone after the cancel: GET answered 404"]),
    (409, 405, []),
    (500, 501, ["cancelling SUCCESSFUL task a answered 500, not 409"]),
])
def test_judge_known_refusal(status: int, after: Any, expected: list[str]) -> None:
    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        if isinstance(after, int):
            return after
        if after is None:
            return 404
        target.tasks[task_id] = after
        return ...

    target = ScriptedTarget({"a": "SUCCESSFUL"}, on_get=on_get)
    session = scripted_session(target)
    exchange = target._exchange("DELETE", "a", status, None, "schema")
    session.clock.now = 7.0  # type: ignore[attr-defined]
    scenarios.judge_known_refusal(session, "SUCCESSFUL", "a", exchange)
    assert outcome(session, "BEH-NOT-CANCELLABLE") is (FAIL if expected else PASS)
    assert messages(session, "BEH-NOT-CANCELLABLE") == expected
    assert target.gets("a") == 1
    # Re-read at the end of the run, as a refusal in SUCCESSFUL that started the re-read's clock.
    assert session.cancels.touched == {"a": ("BEH-NOT-CANCELLABLE", "SUCCESSFUL")}
    assert session.cancels.since == {"a": {(False, "SUCCESSFUL"): 7.0}}


def test_judge_known_refusal_leaves_a_dropped_answer_alone() -> None:
    target = ScriptedTarget({"a": "SUCCESSFUL"})
    session = scripted_session(target)
    scenarios.judge_known_refusal(session, "SUCCESSFUL", "a", target._exchange("DELETE", "a", None, None, "p"))
    assert result(session, "BEH-NOT-CANCELLABLE").evaluations == 0 and target.gets() == 0
    assert session.cancels.touched == {}


# -- unchanged --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("before", "after", "same"), [
    ("SUCCESSFUL", "SUCCESSFUL", True),
    ("SUCCESSFUL", "CANCELLED", False),
    ("SUCCESSFUL", "FAILED", False),
    ("CANCELLED", "CANCELLED", True),
    ("CANCELLED", "FAILED", False),
    ("CANCELLED", "IN_PROGRESS", False),
    ("PENDING", "IN_PROGRESS", True),
    ("PENDING", "SUCCESSFUL", True),
    ("PENDING", "SKIPPED", True),
    ("PENDING", "CANCELLED", False),
    ("PENDING", "None", False),
    ("IN_PROGRESS", "SUCCESSFUL", True),
    ("IN_PROGRESS", "COMPLETED_WITH_WARNING", True),
    ("IN_PROGRESS", "CANCELLED", False),
    ("IN_PROGRESS", "PENDING", False),
    ("FAILED", "PENDING", False),
])
def test_unchanged(before: str, after: str, same: bool) -> None:
    assert unchanged(before, after) is same


# -- BEH-UNKNOWN-404 --------------------------------------------------------------------------------
def test_unknown_ids_pass_on_a_faithful_server(servers: Callable[..., Reference]) -> None:
    session = servers().session(statuses=["SUCCESSFUL"])
    scenarios.unknown_id(session)
    got = result(session, "BEH-UNKNOWN-404")
    assert got.outcome is PASS and got.evaluations == 3


def test_unknown_ids_answered_409_fail(servers: Callable[..., Reference]) -> None:
    session = servers("unknown-id-409").session()
    scenarios.unknown_id(session)
    texts = messages(session, "BEH-UNKNOWN-404")
    assert len(texts) == 3 and result(session, "BEH-UNKNOWN-404").failures == 3
    assert all(t.startswith("cancelling unknown id ") and t.endswith(" answered 409, not 404") for t in texts)


def test_unknown_id_without_an_answer_names_the_error() -> None:
    session = scripted_session(ScriptedTarget(on_delete=lambda t, i: None))
    scenarios.unknown_id(session)
    assert all(t.endswith(" answered connection reset, not 404") for t in messages(session, "BEH-UNKNOWN-404"))
    assert result(session, "BEH-UNKNOWN-404").failures == 3


def test_unknown_ids_avoid_known_ones_and_follow_the_seed() -> None:
    target = ScriptedTarget()
    session = scripted_session(target)
    first = list(scenarios.unknown_ids(session, 3, "BEH-UNKNOWN-404"))
    assert len(first) == 3 and len(set(first)) == 3
    # shaped like a real task id (a random UUID), so only "no such task" can explain a refusal
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in first)
    # the same seed draws the same ids; an id the pool knows is skipped
    again = scripted_session(ScriptedTarget(), given={"SUCCESSFUL": [first[0]]})
    assert list(scenarios.unknown_ids(again, 2, "BEH-UNKNOWN-404")) == first[1:]


# -- judge_generated --------------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "fails"), [
    (404, False), (400, False), (300, False), (199, False), (500, False),
    (409, True), (200, True), (204, True), (299, True),
])
def test_judge_generated(status: int, fails: bool) -> None:
    target = ScriptedTarget()
    session = scripted_session(target)
    exchange = target._exchange("DELETE", "zz", status, None, "p")
    scenarios.judge_generated(session, exchange)
    got = result(session, "BEH-UNKNOWN-404")
    assert got.evaluations == 1 and got.outcome is (FAIL if fails else PASS)
    if fails:
        assert messages(session, "BEH-UNKNOWN-404") == [
            f"unknown id 'zz' answered {status}; an id that names no task must answer 404"]


def test_judge_generated_leaves_a_dropped_answer_alone() -> None:
    target = ScriptedTarget()
    session = scripted_session(target)
    scenarios.judge_generated(session, target._exchange("DELETE", "zz", None, None, "p"))
    assert result(session, "BEH-UNKNOWN-404").evaluations == 0


# -- BEH-RACE ---------------------------------------------------------------------------------------
def test_race_passes_on_a_faithful_server(servers: Callable[..., Reference]) -> None:
    ref = servers()
    session = ref.session(in_progress=1, provision=False)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.racing_cancels(session)
    assert outcome(session, "BEH-RACE") is PASS
    assert ref.deletes_of(task_id) == 4 and ref.status(task_id) == "CANCELLED"
    assert session.cancelled_by_suite == [task_id]
    assert session.cancels.touched[task_id] == ("BEH-RACE", "CANCELLED")
    assert list(session.cancels.since[task_id]) == [(True, "CANCELLED")]  # cancelled by a 200
    assert evidence(session, "BEH-RACE") == []


def test_race_sends_at_least_two_cancels(servers: Callable[..., Reference]) -> None:
    ref = servers("racing-cancels")
    session = ref.session(in_progress=1, concurrency=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.racing_cancels(session)
    assert ref.deletes_of(task_id) == 2
    assert messages(session, "BEH-RACE")[0].startswith(f"2 concurrent cancels of {task_id} answered [200, 200]")


@pytest.mark.parametrize(("defect", "expected", "evidence_status"), [
    ("racing-cancels", "answered [200, 200, 200, 200]: a loser answered 200, not 409 (4 winners), but the target "
     "cancels synchronously", 200),
    ("race-zero-winners", "answered [409, 409, 409, 409]: none answered 200, so no cancel won", 409),
    ("race-404-losers", "answered [200, 404, 404, 404]: losers must answer 409, not 404", 404),
])
def test_race_defects(servers: Callable[..., Reference], defect: str, expected: str, evidence_status: int) -> None:
    session = servers(defect).session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.racing_cancels(session)
    assert outcome(session, "BEH-RACE") is FAIL
    [text] = messages(session, "BEH-RACE")
    assert text.startswith(f"4 concurrent cancels of {task_id} {expected}")
    assert evidence(session, "BEH-RACE")[0].response.status == evidence_status  # type: ignore[union-attr]


def test_race_on_an_asynchronous_target_accepts_several_200(servers: Callable[..., Reference]) -> None:
    ref = servers("async-cancel-repeat-200")
    session = ref.session(in_progress=1)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.racing_cancels(session)
    assert outcome(session, "BEH-RACE") is PASS
    assert ref.status(task_id) == "CANCELLED"


def test_race_whose_cancel_never_settles_fails(servers: Callable[..., Reference]) -> None:
    session = servers("cancel-not-applied").session(in_progress=1, settle_timeout=2.0)
    task_id = session.pool.given["IN_PROGRESS"][0]
    scenarios.racing_cancels(session)
    assert [m for m in messages(session, "BEH-RACE") if m.startswith("after a 200 cancel")] == [
        f"after a 200 cancel, task {task_id} reads IN_PROGRESS, not CANCELLED, when the 2 s settle window closed "
        "(reads: 0.00s IN_PROGRESS, 0.10s IN_PROGRESS, 0.30s IN_PROGRESS, 0.70s IN_PROGRESS, 1.50s IN_PROGRESS, "
        "2.00s IN_PROGRESS)"]


def test_race_of_a_forgotten_task_fails_on_its_losers(servers: Callable[..., Reference]) -> None:
    session = servers("forget-cancelled").session(in_progress=1)
    scenarios.racing_cancels(session)
    [text] = messages(session, "BEH-RACE")
    assert "losers must answer 409, not 404" in text


def test_race_without_get_judges_the_answers_alone() -> None:
    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_get=lambda t, i: 405))
    scenarios.racing_cancels(session)
    assert outcome(session, "BEH-RACE") is PASS
    assert session.cancels.touched == {"a": ("BEH-RACE", "CANCELLED")}


def test_race_without_a_task_is_not_run() -> None:
    session = scripted_session(ScriptedTarget())
    scenarios.racing_cancels(session)
    assert result(session, "BEH-RACE").reason == scenarios.NO_IN_PROGRESS


def test_race_of_a_task_that_finished_meanwhile_takes_another_task() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=a_finishes_when_cancelled)
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert outcome(session, "BEH-RACE") is PASS
    assert target.deletes("b") == 4 and session.cancelled_by_suite == ["b"]
    assert session.notes == ["task a finished (SUCCESSFUL) while it was raced; another task was used"]


@pytest.mark.parametrize("after", ["CANCELLED", "IN_PROGRESS", "PENDING"])
def test_race_with_no_winner_and_a_task_not_finished_fails(after: str) -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = after
        return 409

    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=on_delete)
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert target.deletes("b") == 0 and session.notes == []
    assert any("none answered 200" in m for m in messages(session, "BEH-RACE"))


def test_a_3xx_is_no_winner_of_a_race() -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        if task_id == "a":
            target.tasks["a"] = "SUCCESSFUL"
            return 300 if target.deletes("a") == 1 else 409
        return ...

    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=on_delete)
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert session.notes == ["task a finished (SUCCESSFUL) while it was raced; another task was used"]
    assert session.cancelled_by_suite == ["b"]


def test_race_with_a_winner_on_a_task_read_finished_is_judged() -> None:
    # One cancel won, yet the task reads SUCCESSFUL: that is no reason to take another task.
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = "SUCCESSFUL"
        return 200 if target.deletes(task_id) == 1 else 409

    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"}, on_delete=on_delete)
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert target.deletes("b") == 0
    assert messages(session, "BEH-RACE") == [
        "after a 200 cancel, task a ended as SUCCESSFUL, not CANCELLED (reads: 0.00s SUCCESSFUL)"]


def test_race_gives_up_after_max_acquire_tasks_finishing_meanwhile() -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = "FAILED"
        return 409

    target = ScriptedTarget(on_delete=on_delete)
    session = scripted_session(target, provision=True)
    scenarios.racing_cancels(session)
    assert target.created == scenarios.MAX_ACQUIRE
    assert outcome(session, "BEH-RACE") is NOT_RUN
    assert result(session, "BEH-RACE").reason == scenarios.NO_IN_PROGRESS
    assert session.cancelled_by_suite == []


def test_race_evidence_is_the_answer_that_is_neither_200_nor_409() -> None:
    answers = iter([200, 409, 503, 409])
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=lambda t, i: (t.tasks.__setitem__(i, "CANCELLED"),
                                                                          next(answers))[1])
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert evidence(session, "BEH-RACE")[0].response.status == 503  # type: ignore[union-attr]


def test_race_evidence_is_a_winner_when_every_answer_is_200_or_409() -> None:
    answers = iter([409, 200, 200, 409])
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=lambda t, i: (t.tasks.__setitem__(i, "CANCELLED"),
                                                                          next(answers))[1])
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert messages(session, "BEH-RACE")[0].endswith("only one may win")
    assert evidence(session, "BEH-RACE")[0].response.status == 200  # type: ignore[union-attr]


def test_race_cancels_are_numbered_and_dropped_answers_are_no_answer() -> None:
    answers = iter([None, 200, 409, None])
    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_delete=lambda t, i: (t.tasks.__setitem__(i, "CANCELLED"),
                                                                          next(answers))[1])
    purposes: list[str] = []
    plain = target._exchange

    def exchange(method: str, task_id: str, answer: Any, body: Any, purpose: str) -> Any:
        purposes.append(purpose)
        return plain(method, task_id, answer, body, purpose)

    target._exchange = exchange  # type: ignore[method-assign]
    session = scripted_session(target)
    scenarios.racing_cancels(session)
    assert [p for p in purposes if "concurrent" in p] == [f"BEH-RACE: concurrent cancel {i}/4" for i in (1, 2, 3, 4)]
    assert messages(session, "BEH-RACE") == [
        "4 concurrent cancels of a answered [0, 0, 200, 409]: losers must answer 409, not no answer"]
    assert evidence(session, "BEH-RACE")[0].response is None  # type: ignore[union-attr]


def test_race_whose_task_reads_in_progress_then_vanishes_fails() -> None:
    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        if target.gets(task_id) == 3:  # precondition, right after the race, then gone
            return 404
        return ...

    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        return 200 if target.deletes(task_id) == 1 else 409

    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_get=on_get, on_delete=on_delete))
    scenarios.racing_cancels(session)
    assert messages(session, "BEH-RACE") == [
        "after a 200 cancel, task a ended as GET answered 404, not CANCELLED (reads: 0.00s IN_PROGRESS, "
        "0.10s GET answered 404)"]


# -- judge_race -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("codes", "pending", "asynchronous", "expected"), [
    ([200, 409, 409, 409], False, False, []),
    ([409, 409, 409, 409], False, False, ["none answered 200, so no cancel won"]),
    ([0, 0, 0, 0], True, True, ["none answered 200, so no cancel won", "not no answer"]),
    ([200, 404, 404, 0], False, False, ["losers must answer 409, not no answer, 404"]),
    ([200, 200, 409, 409], False, False, ["a loser answered 200, not 409 (2 winners)"]),
    ([200, 200, 409, 409], True, False, []),
    ([200, 200, 409, 409], False, True, []),
    ([200, 299, 409, 409], False, False, ["(2 winners)"]),
    ([199, 300, 409, 409], False, False, ["none answered 200", "not 199, 300"]),
    ([204, 409, 409, 409], False, False, []),
])
def test_judge_race(codes: list[int], pending: bool, asynchronous: bool, expected: list[str]) -> None:
    got = [str(v) for v in judge_race(codes, 4, "t", pending=pending, asynchronous=asynchronous)]
    assert len(got) == len(expected)
    for text, part in zip(got, expected, strict=True):
        assert text.startswith(f"4 concurrent cancels of t answered {codes}: ") and part in text


# -- settling ---------------------------------------------------------------------------------------
def test_settling_properties_and_violation_texts() -> None:
    sync = Settling("t", [(0.0, reading("CANCELLED"))])
    assert sync.settled and sync.synchronous and sync.seconds == 0.0
    late = Settling("t", [(0.0, reading("IN_PROGRESS")), (0.25, reading("CANCELLED"))])
    assert late.settled and not late.synchronous and late.seconds == 0.25
    assert late.timeline() == "0.00s IN_PROGRESS, 0.25s CANCELLED"
    stuck = Settling("t", [(0.0, reading("IN_PROGRESS")), (1.5, reading("IN_PROGRESS"))])
    assert str(settle_violation(stuck, 1.5)) == (
        "after a 200 cancel, task t reads IN_PROGRESS, not CANCELLED, when the 1.5 s settle window closed "
        "(reads: 0.00s IN_PROGRESS, 1.50s IN_PROGRESS)")
    lost = Settling("t", [(0.0, Reading(SimpleNamespace(error="reset"), None, None))])  # type: ignore[arg-type]
    assert not lost.settled
    assert "ended as no answer (reset), not CANCELLED" in str(settle_violation(lost, 1.0))


def test_await_cancelled_starts_from_a_first_reading_without_reading_again() -> None:
    target = ScriptedTarget({"a": "CANCELLED"})
    session = scripted_session(target)
    settling = scenarios.await_cancelled(session, "a", "p", since=0.0, first=reading("CANCELLED"))
    assert settling.settled and target.gets() == 0
    assert session.cancels.observations == [("a", 0.0, True)]


def test_await_cancelled_polls_within_the_window_and_stops_on_another_status() -> None:
    clock = FakeClock()
    reads: list[str] = []

    def on_get(target: ScriptedTarget, task_id: str) -> Any:
        reads.append(task_id)
        if len(reads) == 4:
            target.tasks[task_id] = "CANCELLED"
        return ...

    target = ScriptedTarget({"a": "IN_PROGRESS"}, on_get=on_get)
    session = scripted_session(target, clock=clock, settle_timeout=10.0)
    settling = scenarios.await_cancelled(session, "a", "p", since=0.0)
    assert settling.settled and not settling.synchronous and len(reads) == 4
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert session.cancels.observations == [("a", pytest.approx(0.7), False)]


def test_await_cancelled_caps_the_backoff_and_the_last_wait_at_the_window() -> None:
    clock = FakeClock()
    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}), clock=clock, settle_timeout=5.0)
    settling = scenarios.await_cancelled(session, "a", "p", since=0.0)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 1.9])
    assert not settling.settled and settling.seconds == pytest.approx(5.0)
    assert session.cancels.gone == [] and session.cancels.observations == []


def test_await_cancelled_counts_from_the_200_not_from_the_call() -> None:
    clock = FakeClock(now=4.0)
    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}), clock=clock, settle_timeout=5.0)
    settling = scenarios.await_cancelled(session, "a", "p", since=0.0)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.3])
    assert settling.readings[0][0] == pytest.approx(4.0)


def test_await_cancelled_with_a_stopped_clock_reads_a_bounded_number_of_times() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"})
    session = scripted_session(target)
    session.sleep = lambda seconds: None
    assert not scenarios.await_cancelled(session, "a", "p", since=0.0).settled
    assert target.gets() == scenarios.SETTLE_MAX_READS


# -- the ledger -------------------------------------------------------------------------------------
def test_ledger_tracks_the_last_toucher_and_the_timeline_of_tracked_tasks_only() -> None:
    ledger = CancelLedger()
    ledger.event("a", 1.0, "ignored: not tracked yet")
    ledger.track("a", "BEH-CANCEL", "CANCELLED", 2.0, cancelled=True)
    ledger.event("a", 2.5, "DELETE 200")
    ledger.track("a", "BEH-RECANCEL", "CANCELLED", 3.0)
    ledger.event("a", 3.25, "DELETE 409")
    assert ledger.touched == {"a": ("BEH-RECANCEL", "CANCELLED")}
    assert ledger.since == {"a": {(True, "CANCELLED"): 2.0, (False, "CANCELLED"): 3.0}}
    assert ledger.timeline("a", 2.0) == "0.50s DELETE 200, 1.25s DELETE 409"
    assert ledger.timeline("b", 0.0) == ""


def test_the_ledger_keeps_when_each_kind_of_touch_first_happened_to_a_task() -> None:
    ledger = CancelLedger()
    ledger.track("a", "BEH-STATEFUL", "CANCELLED", 1.0, cancelled=True)
    ledger.track("a", "BEH-STATEFUL", "CANCELLED", 4.0, cancelled=True)  # a repeat: the first one counts
    ledger.track("a", "BEH-RACE", "CANCELLED", 4.5, cancelled=True)  # whoever sent it
    assert ledger.since == {"a": {(True, "CANCELLED"): 1.0}}
    ledger.track("a", "BEH-STATEFUL", "CANCELLED", 5.0)  # a refusal is another kind
    ledger.track("a", "BEH-RECANCEL", "FAILED", 6.0)  # and so is another status
    assert ledger.since == {"a": {(True, "CANCELLED"): 1.0, (False, "CANCELLED"): 5.0, (False, "FAILED"): 6.0}}
    assert ledger.touched == {"a": ("BEH-RECANCEL", "FAILED")}


def test_ledger_mode() -> None:
    assert CancelLedger().mode() == {"mode": None, "settle_seconds": None}
    assert not CancelLedger().asynchronous
    sync = CancelLedger(observations=[("a", 0.0, True), ("b", 0.0, True)])
    assert sync.mode() == {"mode": "synchronous", "settle_seconds": None} and not sync.asynchronous
    mixed = CancelLedger(observations=[("a", 0.0, True), ("b", 1.23456, False), ("c", 0.5, False)])
    assert mixed.mode() == {"mode": "asynchronous", "settle_seconds": 1.235} and mixed.asynchronous


def test_cancel_and_read_are_written_to_the_timeline_of_a_tracked_task() -> None:
    clock = FakeClock(now=10.0)
    session = scripted_session(ScriptedTarget({"a": "IN_PROGRESS"}, on_get=lambda t, i: None), clock=clock)
    session.cancels.track("a", "BEH-CANCEL", "CANCELLED", 10.0)
    scenarios.cancel(session, "a", "p")
    clock.now = 10.5
    scenarios.read(session, "a", "p")
    assert session.cancels.timeline("a", 10.0) == "0.00s DELETE 200, 0.50s GET no answer (connection reset)"
    assert session.recorder.exchanges == 1  # the DELETE went through the response checks; the GET did not


# -- end-of-run reconciliation ----------------------------------------------------------------------
def test_reconcile_with_nothing_touched_reads_nothing() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"})
    session = scripted_session(target)
    scenarios.reconcile(session)
    assert target.gets() == 0 and session.clock.sleeps == []  # type: ignore[attr-defined]


def test_reconcile_waits_for_trailing_changes_then_finds_them(servers: Callable[..., Reference]) -> None:
    ref = servers("changes-after-read")
    session = ref.session(in_progress=1, settle_timeout=5.0)
    task_id = session.pool.given["IN_PROGRESS"][0]
    session.started_monotonic = origin = ref.clock.now
    scenarios.cancel_in_progress(session)
    assert outcome(session, "BEH-CANCEL") is PASS
    before = len(ref.clock.sleeps)
    scenarios.reconcile(session)
    assert ref.clock.sleeps[before:] == [pytest.approx(scenarios.RECONCILE_DELAY)]
    assert outcome(session, "BEH-CANCEL") is FAIL
    [text] = messages(session, "BEH-CANCEL")
    assert text.startswith(f"task {task_id}, left CANCELLED by this run, reads FAILED at the end of the run "
                           "(timeline: ")
    reread = ref.clock.now - origin
    assert text.endswith(f"(timeline: 0.00s GET CANCELLED, {reread:.2f}s GET FAILED)")


def test_reconcile_waits_only_for_what_is_left_of_the_delay() -> None:
    clock = FakeClock()
    session = scripted_session(ScriptedTarget({"a": "SUCCESSFUL"}), clock=clock, settle_timeout=30.0)
    session.cancels.track("a", "BEH-NOT-CANCELLABLE", "SUCCESSFUL", 0.0)
    clock.now = 0.5
    scenarios.reconcile(session)
    assert clock.sleeps == [1.5]
    short = scripted_session(ScriptedTarget({"a": "SUCCESSFUL"}), clock=FakeClock(), settle_timeout=0.5)
    short.cancels.track("a", "BEH-NOT-CANCELLABLE", "SUCCESSFUL", 0.0)
    scenarios.reconcile(short)
    assert short.clock.sleeps == [0.5]  # type: ignore[attr-defined]
    late = scripted_session(ScriptedTarget({"a": "SUCCESSFUL"}), clock=FakeClock(now=9.0))
    late.cancels.track("a", "BEH-NOT-CANCELLABLE", "SUCCESSFUL", 0.0)
    scenarios.reconcile(late)
    assert late.clock.sleeps == []  # type: ignore[attr-defined]
    assert result(late, "BEH-NOT-CANCELLABLE").evaluations == 0


@pytest.mark.parametrize(("early", "late"), [
    # Two refusals in one status (which requirement sent them, a target cannot tell)
    (("BEH-NOT-CANCELLABLE", "SUCCESSFUL", False), ("BEH-STATEFUL", "SUCCESSFUL", False)),
    # two tasks cancelled with 200
    (("BEH-CANCEL", "CANCELLED", True), ("BEH-STATEFUL", "CANCELLED", True)),
])
def test_reconcile_waits_for_the_earliest_task_of_each_kind_of_touch_only(
        early: tuple[str, str, bool], late: tuple[str, str, bool]) -> None:
    # The first is old enough, so the second (touched a moment ago) is read at once too: no sleep
    # at the end of the run for it.
    clock = FakeClock()
    target = ScriptedTarget({"early": early[1], "late": late[1]})
    session = scripted_session(target, clock=clock, settle_timeout=30.0, concurrency=1)
    session.cancels.track("late", late[0], late[1], 1.5, cancelled=late[2])
    session.cancels.track("early", early[0], early[1], 0.0, cancelled=early[2])
    session.cancels.read_cancelled.update({"early", "late"})
    clock.now = 2.0
    scenarios.reconcile(session)
    assert clock.sleeps == []
    assert target.gets("early") == 1 and target.gets("late") == 1


def test_reconcile_counts_every_kind_of_touch_a_task_had() -> None:
    # BEH-CANCEL's task, refused again by BEH-RECANCEL (its owner now), is still the run's first
    # cancel: a later cancel by the state machine waits for nothing more.
    clock = FakeClock()
    target = ScriptedTarget({"a": "CANCELLED", "b": "CANCELLED"})
    session = scripted_session(target, clock=clock, settle_timeout=30.0, concurrency=1)
    session.cancels.track("a", "BEH-CANCEL", "CANCELLED", 0.0, cancelled=True)
    session.cancels.track("a", "BEH-RECANCEL", "CANCELLED", 0.5)
    session.cancels.track("b", "BEH-STATEFUL", "CANCELLED", 1.5, cancelled=True)
    session.cancels.read_cancelled.update({"a", "b"})
    clock.now = 2.0
    scenarios.reconcile(session)
    assert clock.sleeps == [pytest.approx(0.5)]  # the refusal at 0.5, not the cancel at 1.5
    assert target.gets("a") == 1 and target.gets("b") == 1


@pytest.mark.parametrize(("late_rid", "late_keeps", "cancelled"), [
    ("BEH-NOT-CANCELLABLE", "FAILED", False),  # a refusal in another status
    ("BEH-NOT-CANCELLABLE", "CANCELLED", False),  # a refusal of a cancelled task
    ("BEH-STATEFUL", "CANCELLED", True),  # a cancel that answered 200
])
def test_reconcile_waits_for_a_kind_of_touch_that_is_not_old_enough(late_rid: str, late_keeps: str,
                                                                     cancelled: bool) -> None:
    clock = FakeClock()
    target = ScriptedTarget({"early": "SUCCESSFUL", "late": late_keeps})
    session = scripted_session(target, clock=clock, settle_timeout=30.0, concurrency=1)
    session.cancels.track("early", "BEH-NOT-CANCELLABLE", "SUCCESSFUL", 0.0)
    session.cancels.track("late", late_rid, late_keeps, 1.5, cancelled=cancelled)
    session.cancels.read_cancelled.add("late")  # a cancelled task is re-read once it read CANCELLED
    clock.now = 2.0
    scenarios.reconcile(session)
    assert clock.sleeps == [pytest.approx(1.5)]
    assert target.gets("early") == 1 and target.gets("late") == 1


def test_reconcile_skips_cancels_that_never_read_cancelled_and_rereads_the_others() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "CANCELLED", "c": "CANCELLED", "d": "SUCCESSFUL"})
    session = scripted_session(target)
    session.cancels.track("a", "BEH-CANCEL", "CANCELLED", 0.0, cancelled=True)  # never read CANCELLED
    session.cancels.track("b", "BEH-STATEFUL", "CANCELLED", 0.0, cancelled=True)
    scenarios.read(session, "b", "the model's read")  # reads CANCELLED
    session.cancels.track("c", "BEH-NOT-CANCELLABLE", "CANCELLED", 0.0)  # handed over CANCELLED, refused
    session.cancels.track("d", "BEH-NOT-CANCELLABLE", "SUCCESSFUL", 0.0)
    assert session.cancels.read_cancelled == {"b"}
    scenarios.reconcile(session)
    assert [target.gets(t) for t in "abcd"] == [0, 2, 1, 1]
    assert [result(session, r).evaluations for r in ("BEH-CANCEL", "BEH-STATEFUL", "BEH-NOT-CANCELLABLE")] == [0] * 3


@pytest.mark.parametrize(("answer", "status", "fails"), [
    (..., "SUCCESSFUL", False),
    (..., "CANCELLED", True),
    (404, None, True),
    (405, None, False), (501, None, False), (None, None, False),
    (500, None, True),
])
def test_reconcile_judges_a_refused_task(answer: Any, status: str | None, fails: bool) -> None:
    target = ScriptedTarget({"a": status or "SUCCESSFUL"}, on_get=lambda t, i: answer)
    clock = FakeClock()
    session = scripted_session(target, clock=clock)
    session.cancels.track("a", "BEH-NOT-CANCELLABLE", "SUCCESSFUL", 0.0)
    session.cancels.event("a", 0.0, "DELETE 409")
    session.started_monotonic = 0.0
    scenarios.reconcile(session)
    assert outcome(session, "BEH-NOT-CANCELLABLE") is (FAIL if fails else NOT_RUN)
    if fails:
        [text] = messages(session, "BEH-NOT-CANCELLABLE")
        assert text.startswith("task a, left SUCCESSFUL by this run, reads ")
        assert text.endswith(" at the end of the run (timeline: 0.00s DELETE 409, 2.00s GET "
                             f"{'CANCELLED' if status else f'GET answered {answer}'})")
        assert evidence(session, "BEH-NOT-CANCELLABLE")[0].request.method == "GET"  # type: ignore[union-attr]


# -- AUTH-REQUIRED ----------------------------------------------------------------------------------
def test_auth_required_passes_on_a_faithful_server(servers: Callable[..., Reference]) -> None:
    session = servers().session()
    scenarios.auth_required(session)
    got = result(session, "AUTH-REQUIRED")
    assert got.outcome is PASS and got.evaluations == 2


@pytest.mark.parametrize(("defect", "failures"), [("auth-ignored", 2), ("any-bearer-accepted", 1)])
def test_auth_required_defects(servers: Callable[..., Reference], defect: str, failures: int) -> None:
    session = servers(defect).session()
    scenarios.auth_required(session)
    got = result(session, "AUTH-REQUIRED")
    assert got.outcome is FAIL and got.failures == failures
    assert messages(session, "AUTH-REQUIRED")[-1] == (
        "a cancel with a forged bearer token answered 404, not 401/403: the target does not check credentials")


def test_auth_required_without_credentials_is_not_run() -> None:
    target = ScriptedTarget(credentials=False)
    session = scripted_session(target)
    scenarios.auth_required(session)
    assert outcome(session, "AUTH-REQUIRED") is NOT_RUN
    assert result(session, "AUTH-REQUIRED").reason.startswith("the run has no credentials")
    assert target.deletes() == 0


def test_auth_required_accepts_403_and_names_a_dropped_answer() -> None:
    answers = iter([403, None])
    session = scripted_session(ScriptedTarget(on_delete=lambda t, i: next(answers)))
    scenarios.auth_required(session)
    assert messages(session, "AUTH-REQUIRED") == [
        "a cancel with a forged bearer token answered connection reset, not 401/403: the target does not check "
        "credentials"]


# -- plans (what --dry-run prints) ------------------------------------------------------------------
def _plan(rid: str, session: Any) -> list[str]:
    plan = get(rid).plan
    assert plan is not None
    return plan(session)


def test_plans_say_what_each_scenario_needs() -> None:
    nothing = scripted_session(ScriptedTarget())
    for rid in ("BEH-CANCEL", "BEH-RECANCEL", "BEH-RACE"):
        assert _plan(rid, nothing) == [f"NOT RUN: {scenarios.NO_IN_PROGRESS}"]
    assert _plan("BEH-NOT-CANCELLABLE", nothing) == ["NOT RUN: no task in a non-cancellable status given"]
    provisioned = scripted_session(ScriptedTarget(), provision=True)
    assert _plan("BEH-CANCEL", provisioned)[0].endswith("(IN_PROGRESS, handed over: a task the reference server "
                                                        "creates)")
    given = scripted_session(ScriptedTarget({i: "IN_PROGRESS" for i in "abcd"} | {"e": "SUCCESSFUL"}))
    assert _plan("BEH-RACE", given) == ["4 concurrent DELETEs, then GET of one task until it reads CANCELLED "
                                        "(IN_PROGRESS, handed over: a, b, c)"]
    assert _plan("BEH-NOT-CANCELLABLE", given) == ["GET, DELETE (expects 409), GET /v1/tasks/e (SUCCESSFUL)"]
    assert _plan("AUTH-REQUIRED", given)[0].startswith("DELETE /v1/tasks/<random UUID> without a token")
    assert _plan("AUTH-REQUIRED", scripted_session(ScriptedTarget(credentials=False))) == [
        "NOT RUN: the run has no credentials"]


def test_each_scenario_draws_its_own_ids_whatever_ran_before() -> None:
    # The scenarios may run side by side: the same seed must give each one the same ids in any order.
    one = scripted_session(ScriptedTarget())
    a_first = (list(scenarios.unknown_ids(one, 2, "AUTH-REQUIRED")),
               list(scenarios.unknown_ids(one, 2, "BEH-UNKNOWN-404")))
    other = scripted_session(ScriptedTarget())
    b_first = list(scenarios.unknown_ids(other, 2, "BEH-UNKNOWN-404"))
    assert b_first == a_first[1]
    assert list(scenarios.unknown_ids(other, 2, "AUTH-REQUIRED")) == a_first[0]
    assert a_first[0] != a_first[1]

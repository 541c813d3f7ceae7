"""BEH-STATEFUL on its own: the model's tables, each rule and invariant driven by hand against a
scripted target, and small seeded runs of the whole machine against the reference server with a
defect only the machine (or a given rule) catches. Every clock is injected."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import strategies as st
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
)

from conformance.model import Outcome
from conformance.requirements import get, scenarios, stateful
from conformance.requirements.scenarios import NO_IN_PROGRESS, PendingSettles
from conformance.requirements.stateful import PENDING_CANCEL, UNKNOWN, expected_cancel_status, read_matches

PASS, FAIL, NOT_RUN = Outcome.PASS, Outcome.FAIL, Outcome.NOT_RUN
RID = "BEH-STATEFUL"


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[..., Reference]]:
    with references(settle_seconds=1.0) as get:
        yield get


# -- the model's tables -----------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "expected"), [
    (UNKNOWN, {404}), ("IN_PROGRESS", {200}), (PENDING_CANCEL, {200, 409}),
    ("CANCELLED", {409}), ("SUCCESSFUL", {409}), ("PENDING", {409}), ("FAILED", {409}),
])
def test_expected_cancel_status(state: str, expected: set[int]) -> None:
    assert expected_cancel_status(state) == expected


@pytest.mark.parametrize(("model", "status", "http", "overdue", "matches"), [
    (UNKNOWN, None, 404, False, True),
    (UNKNOWN, None, 400, False, False),
    (UNKNOWN, "SUCCESSFUL", 200, False, False),
    ("SUCCESSFUL", "SUCCESSFUL", 200, True, True),
    ("SUCCESSFUL", "FAILED", 200, False, False),
    ("SUCCESSFUL", None, 404, False, False),
    ("CANCELLED", "FAILED", 200, False, False),
    (PENDING_CANCEL, "CANCELLED", 200, True, True),
    (PENDING_CANCEL, "IN_PROGRESS", 200, False, True),
    (PENDING_CANCEL, "IN_PROGRESS", 200, True, False),
    (PENDING_CANCEL, "FAILED", 200, False, False),
    (PENDING_CANCEL, None, 404, False, False),
    ("IN_PROGRESS", "SUCCESSFUL", 200, False, True),
    ("IN_PROGRESS", "SKIPPED", 200, False, True),
    ("IN_PROGRESS", "CANCELLED", 200, False, False),
    ("IN_PROGRESS", "PENDING", 200, False, False),
    ("PENDING", "IN_PROGRESS", 200, False, True),
    ("PENDING", "SUCCESSFUL", 200, False, False),
    ("PENDING", "CANCELLED", 200, False, False),
])
def test_read_matches(model: str, status: str | None, http: int, overdue: bool, matches: bool) -> None:
    assert read_matches(model, status, http, overdue=overdue) is matches


# -- the machine, driven by hand --------------------------------------------------------------------
class Draw:
    """Stands in for Hypothesis' data: draws element `index` of a sampled_from strategy."""

    def __init__(self, index: int = 0) -> None:
        self.index = index

    def draw(self, strategy: Any) -> Any:
        return strategy.elements[self.index]


class Machine:
    def __init__(self, target: ScriptedTarget, fixed: dict[str, str], *, can_read: bool = True,
                 settle_timeout: float = 5.0, provision: bool = False) -> None:
        self.target = target
        self.clock = FakeClock()
        given: dict[str, list[str]] = {}
        for task_id, status in target.tasks.items():
            if task_id not in fixed:
                given.setdefault(status, []).append(task_id)
        self.session = scripted_session(target, given=given, clock=self.clock, settle_timeout=settle_timeout,
                                        provision=provision)
        self.passes: Counter[str] = Counter()
        self.ran: Counter[str] = Counter()
        self.settles = PendingSettles(self.session)
        self.machine: Any = stateful.build_machine(self.session, fixed, can_read, self.passes, self.ran,
                                                   self.settles)()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.machine, name)


def test_sync_takes_up_to_three_tasks_and_reads_the_model_from_the_target() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS", "c": "IN_PROGRESS", "d": "IN_PROGRESS",
                             "s": "FAILED"})
    m = Machine(target, {"s": "SUCCESSFUL", "u": UNKNOWN})
    m.sync()
    assert m.in_progress == ["a", "b", "c"]
    assert m.model == {"s": "FAILED", "u": UNKNOWN, "a": "IN_PROGRESS", "b": "IN_PROGRESS", "c": "IN_PROGRESS"}
    assert target.gets("u") == 0 and target.gets("d") == 0
    # Each task read once: the fresh ones by their precondition read, the known one by the sync.
    assert [target.gets(task_id) for task_id in "abcs"] == [1, 1, 1, 1]


def test_sync_without_get_keeps_the_given_statuses() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "s": "FAILED"})
    m = Machine(target, {"s": "SUCCESSFUL"}, can_read=False)
    m.sync()
    assert m.model == {"s": "SUCCESSFUL", "a": "IN_PROGRESS"}
    assert target.gets("s") == 0


def test_resync_keeps_a_pending_cancel_that_still_reads_in_progress_and_ignores_no_answer() -> None:
    answers: dict[str, Any] = {}
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS", "c": "SUCCESSFUL"},
                            on_get=lambda t, i: answers.get(i, ...))
    m = Machine(target, {"c": "SUCCESSFUL"})
    m.model.update(a=PENDING_CANCEL, b=PENDING_CANCEL)
    target.tasks["b"] = "CANCELLED"
    answers["c"] = 503
    for task_id in "abc":
        m._resync(task_id)
    assert m.model == {"a": PENDING_CANCEL, "b": "CANCELLED", "c": "SUCCESSFUL"}


def test_a_cancel_of_an_in_progress_task_makes_it_pending() -> None:
    target = ScriptedTarget({"aaaaaaaa-1": "IN_PROGRESS", "bbbbbbbb-2": "IN_PROGRESS"},
                            on_delete=lambda t, i: (t.tasks.__setitem__(i, "CANCELLED"), 204)[1])
    m = Machine(target, {})
    m.sync()
    m.clock.now = 7.0
    m.cancel_in_progress(Draw(1))
    assert m.ran["cancel_in_progress"] == 1 and m.passes["held"] == 1
    assert m.model["bbbbbbbb-2"] == PENDING_CANCEL and m.model["aaaaaaaa-1"] == "IN_PROGRESS"
    assert m.cancelled_at == {"bbbbbbbb-2": 7.0} and m.last_cancelled == "bbbbbbbb-2"
    assert m.steps == ["DELETE bbbbbbbb=200"]  # any 2xx counts as the 200 the model expects
    assert m.session.cancels.touched == {"bbbbbbbb-2": (RID, "CANCELLED")}
    assert m.session.cancels.since == {"bbbbbbbb-2": {(True, "CANCELLED"): 7.0}}


def test_cancel_in_progress_draws_only_tasks_the_model_holds_in_progress() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    m = Machine(target, {})
    m.sync()
    m.model["a"] = PENDING_CANCEL
    m.cancel_in_progress(Draw(0))
    assert target.deletes("b") == 1 and target.deletes("a") == 0


@pytest.mark.parametrize(("state", "keeps"), [("SUCCESSFUL", "SUCCESSFUL"), (PENDING_CANCEL, "CANCELLED"),
                                              ("CANCELLED", "CANCELLED")])
def test_a_refused_cancel_holds_and_tracks_what_the_task_must_keep(state: str, keeps: str) -> None:
    target = ScriptedTarget({"t": "SUCCESSFUL"})
    m = Machine(target, {"t": state})
    m._cancel("t")
    assert m.passes["held"] == 1 and not result(m.session, RID).findings
    assert m.model["t"] == state and m.last_cancelled is None
    assert m.session.cancels.touched == {"t": (RID, keeps)}
    assert list(m.session.cancels.since["t"]) == [(False, keeps)]  # a refusal, not a cancel


def test_any_2xx_is_the_200_the_model_expects() -> None:
    target = ScriptedTarget({"t": "IN_PROGRESS"}, on_delete=lambda t, i: 299)
    m = Machine(target, {"t": "IN_PROGRESS"})
    m._cancel("t")
    assert m.passes["held"] == 1 and m.steps == ["DELETE t=200"] and m.model["t"] == PENDING_CANCEL


def test_a_repeat_200_of_a_pending_cancel_holds_and_changes_nothing() -> None:
    target = ScriptedTarget({"t": "IN_PROGRESS"}, on_delete=lambda t, i: 200)
    m = Machine(target, {"t": PENDING_CANCEL})
    m._cancel("t")
    assert m.passes["held"] == 1 and m.model["t"] == PENDING_CANCEL
    assert m.cancelled_at == {} and m.last_cancelled is None and m.session.cancels.touched == {}


def test_a_third_identical_step_in_a_row_is_not_sent() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "s": "SUCCESSFUL", "f": "FAILED"})
    m = Machine(target, {"s": "SUCCESSFUL", "f": "FAILED", "u": UNKNOWN})
    m.sync()
    for _ in range(4):
        m.cancel_not_cancellable(Draw(0))  # s, four times
    assert target.deletes("s") == 2 and m.ran["cancel_not_cancellable"] == 2
    assert m.ran[stateful.SKIPPED] == 2 and m.passes["held"] == 2
    m.cancel_not_cancellable(Draw(1))  # another task breaks the run of repeats
    m.cancel_not_cancellable(Draw(0))
    assert target.deletes("f") == 1 and target.deletes("s") == 3
    for _ in range(3):
        m.cancel_unknown(Draw(0))
    assert target.deletes("u") == 2 and m.ran["cancel_unknown"] == 2 and m.ran[stateful.SKIPPED] == 3


def test_a_repeat_is_identical_only_with_the_same_method_task_and_model_state() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    m = Machine(target, {})
    m.sync()
    m.read_task(Draw(0))
    m.read_task(Draw(0))
    m.cancel_in_progress(Draw(0))  # a DELETE of the task read twice: not a repeat
    m.read_task(Draw(0))  # a GET again, but the model holds a pending cancel: it then reads CANCELLED
    m.read_task(Draw(0))  # the model holds CANCELLED now
    m.read_task(Draw(0))
    assert target.deletes("a") == 1 and m.ran["read_task"] == 5 and m.ran[stateful.SKIPPED] == 0
    m.read_task(Draw(0))  # the third identical GET in a row
    assert m.ran["read_task"] == 5 and m.ran[stateful.SKIPPED] == 1
    assert [step for step in m.steps if step.startswith("GET a")] == ["GET a=IN_PROGRESS"] * 2 + ["GET a=CANCELLED"] * 3


def test_an_unknown_id_answered_404_holds_untracked() -> None:
    m = Machine(ScriptedTarget(), {"u": UNKNOWN})
    m.cancel_unknown(Draw(0))
    assert m.ran["cancel_unknown"] == 1 and m.passes["held"] == 1
    assert m.session.cancels.touched == {}


@pytest.mark.parametrize(("state", "answer", "expected"), [
    (UNKNOWN, 409, "cancel of t (UNKNOWN in the model) answered 409, expected 404"),
    ("IN_PROGRESS", 409, "cancel of t (IN_PROGRESS in the model) answered 409, expected 200"),
    ("SUCCESSFUL", 200, "cancel of t (SUCCESSFUL in the model) answered 200, expected 409"),
    (PENDING_CANCEL, 404, "cancel of t (PENDING_CANCEL in the model) answered 404, expected 200 or 409"),
    ("SUCCESSFUL", None, "cancel of t (SUCCESSFUL in the model) answered connection reset, expected 409"),
    ("IN_PROGRESS", 300, "cancel of t (IN_PROGRESS in the model) answered 300, expected 200"),
    ("IN_PROGRESS", 199, "cancel of t (IN_PROGRESS in the model) answered 199, expected 200"),
])
def test_a_cancel_answered_against_the_model_fails_with_its_steps(state: str, answer: int | None,
                                                                  expected: str) -> None:
    target = ScriptedTarget({"t": "FAILED"}, on_delete=lambda t, i: answer)
    m = Machine(target, {"t": state})
    m._cancel("t")
    assert outcome(m.session, RID) is FAIL and m.passes["held"] == 0
    shown = "None" if answer is None else str(answer)
    assert messages(m.session, RID) == [f"{expected} (steps: DELETE t={shown})"]
    assert evidence(m.session, RID)[0].request.method == "DELETE"  # type: ignore[union-attr]
    # the model re-reads the task after a mismatch (not an unknown id, which has nothing to read)
    assert m.model["t"] == ("FAILED" if state != UNKNOWN else UNKNOWN)
    assert m.session.cancels.touched == {}


def test_a_mismatch_without_get_is_not_reread() -> None:
    target = ScriptedTarget({"t": "FAILED"}, on_delete=lambda t, i: 200)
    m = Machine(target, {"t": "SUCCESSFUL"}, can_read=False)
    m._cancel("t")
    assert target.gets() == 0 and m.model["t"] == "SUCCESSFUL"


def test_the_steps_shown_are_the_last_eight() -> None:
    target = ScriptedTarget({"t": "SUCCESSFUL"}, on_delete=lambda t, i: 409 if t.deletes() < 10 else 200)
    m = Machine(target, {"t": "SUCCESSFUL"})
    for _ in range(10):
        m._cancel("t")
    [text] = messages(m.session, RID)
    assert text.endswith("(steps: " + " -> ".join(["DELETE t=409"] * 7 + ["DELETE t=200"]) + ")")


def test_cancel_not_cancellable_draws_from_other_tasks_and_cancelled_handovers() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS", "s": "SUCCESSFUL"})
    m = Machine(target, {"s": "SUCCESSFUL", "u": UNKNOWN})
    m.sync()
    m.model["b"] = PENDING_CANCEL
    target.tasks["b"] = "CANCELLED"
    m.cancel_not_cancellable(Draw(1))
    assert m.ran["cancel_not_cancellable"] == 1
    assert target.deletes("b") == 1 and target.deletes("a") == 0 and target.deletes("s") == 0
    m.cancel_not_cancellable(Draw(0))
    assert target.deletes("s") == 1 and m.passes["held"] == 2


def test_read_task_agrees_and_follows_a_task_that_finished() -> None:
    task_id = "aaaaaaaa-bbbb"
    target = ScriptedTarget({task_id: "IN_PROGRESS"})
    m = Machine(target, {})
    m.sync()
    target.tasks[task_id] = "SUCCESSFUL"
    m.read_task(Draw(0))
    assert m.ran["read_task"] == 1 and m.passes["held"] == 1 and m.model[task_id] == "SUCCESSFUL"
    assert m.steps == ["GET aaaaaaaa=SUCCESSFUL"]  # the steps name a task by its first 8 characters


def test_a_pending_cancel_read_in_progress_stays_pending_and_then_settles() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS"})
    m = Machine(target, {"a": PENDING_CANCEL})
    m.cancelled_at["a"] = 0.0
    assert m._read("a", "read") is True and m.model["a"] == PENDING_CANCEL
    target.tasks["a"] = "CANCELLED"
    assert m._read("a", "read") is True and m.model["a"] == "CANCELLED"
    assert m.passes["held"] == 2


@pytest.mark.parametrize(("state", "status", "answer", "expected"), [
    ("SUCCESSFUL", "CANCELLED", ..., "t reads CANCELLED, the model expects SUCCESSFUL"),
    (PENDING_CANCEL, "FAILED", ..., "t reads FAILED, the model expects PENDING_CANCEL within the settle window"),
    (UNKNOWN, "FAILED", ..., "t reads FAILED, the model expects UNKNOWN"),
    ("SUCCESSFUL", "SUCCESSFUL", 404, "t reads GET answered 404, the model expects SUCCESSFUL"),
])
def test_a_read_against_the_model_fails(state: str, status: str, answer: Any, expected: str) -> None:
    target = ScriptedTarget({"t": status}, on_get=lambda t, i: answer)
    m = Machine(target, {"t": state})
    assert m._read("t", "read") is False
    assert m.passes["held"] == 0
    shown = status if answer is ... else str(answer)
    assert messages(m.session, RID) == [f"{expected} (steps: GET t={shown})"]
    assert evidence(m.session, RID)[0].request.method == "GET"  # type: ignore[union-attr]


def test_a_pending_cancel_is_overdue_only_after_the_settle_window() -> None:
    target = ScriptedTarget({"t": "IN_PROGRESS"})
    m = Machine(target, {"t": PENDING_CANCEL}, settle_timeout=5.0)
    m.cancelled_at["t"] = 10.0
    m.clock.now = 15.0
    assert m._read("t", "read") is True
    m.clock.now = 15.5
    assert m._read("t", "read") is False
    assert messages(m.session, RID)[0].startswith("t reads IN_PROGRESS, the model expects PENDING_CANCEL within "
                                                  "the settle window")


def test_a_task_never_cancelled_is_never_overdue() -> None:
    m = Machine(ScriptedTarget({"t": "IN_PROGRESS"}), {"t": PENDING_CANCEL}, settle_timeout=5.0)
    m.clock.now = 100.0
    assert m._read("t", "read") is True


def test_bystanders_are_read_after_a_cancel_and_a_cancelled_one_fails() -> None:
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        target.tasks[task_id] = "CANCELLED"
        target.tasks["c"] = "CANCELLED"  # the neighbour goes too
        return 200

    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS", "c": "IN_PROGRESS"}, on_delete=on_delete)
    m = Machine(target, {})
    m.sync()
    m.model["b"] = "SUCCESSFUL"  # only tasks the model holds IN_PROGRESS are bystanders
    m._cancel("a")
    reads = {i: target.gets(i) for i in "abc"}
    m.bystanders_untouched()
    # c is read as a bystander, then re-read after the mismatch; b is no bystander, a is the cancelled one
    assert {i: target.gets(i) - reads[i] for i in "abc"} == {"a": 0, "b": 0, "c": 2}
    assert messages(m.session, RID) == ["cancelling a also cancelled c (steps: DELETE a=200 -> GET c=CANCELLED)"]
    assert m.model["c"] == "CANCELLED" and m.last_cancelled is None
    m.bystanders_untouched()  # nothing cancelled since: nothing read
    assert {i: target.gets(i) - reads[i] for i in "abc"} == {"a": 0, "b": 0, "c": 2}


def test_an_untouched_bystander_holds() -> None:
    a, b = "aaaaaaaa-1", "bbbbbbbb-2"
    target = ScriptedTarget({a: "IN_PROGRESS", b: "IN_PROGRESS"})
    m = Machine(target, {})
    m.sync()
    m._cancel(a)
    before = target.gets()
    m.bystanders_untouched()
    assert m.passes["held"] == 2 and target.gets() == before + 1 and target.log[-1] == ("GET", b)
    assert m.steps == ["DELETE aaaaaaaa=200", "GET bbbbbbbb=IN_PROGRESS"]


def test_bystanders_are_not_read_without_get() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    m = Machine(target, {}, can_read=False)
    m.sync()
    m._cancel("a")
    before = target.gets()
    m.bystanders_untouched()
    assert target.gets() == before and m.last_cancelled is None


def test_pending_cancels_are_read_once_past_the_settle_window() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    m = Machine(target, {"a": PENDING_CANCEL, "b": "CANCELLED"}, settle_timeout=5.0)
    m.cancelled_at.update(a=0.0, b=0.0)
    m.clock.now = 5.0
    m.pending_cancels_settle()
    assert target.gets() == 0
    m.clock.now = 5.5
    m.pending_cancels_settle()
    assert target.gets("a") == 2 and target.gets("b") == 0  # read, and re-read after the mismatch
    assert messages(m.session, RID)[0].startswith("a reads IN_PROGRESS, the model expects PENDING_CANCEL")
    no_get = Machine(ScriptedTarget({"a": "IN_PROGRESS"}), {"a": PENDING_CANCEL}, can_read=False)
    no_get.cancelled_at["a"] = 0.0
    no_get.clock.now = 100.0
    no_get.pending_cancels_settle()
    assert no_get.target.gets() == 0


def test_teardown_makes_each_missing_kind_of_cancel_once_and_reads_every_task() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "s": "SUCCESSFUL", "f": "FAILED"})
    m = Machine(target, {"s": "SUCCESSFUL", "f": "FAILED", "u": UNKNOWN})
    m.sync()
    reads = target.gets()
    m.teardown()
    assert m.ran == Counter(cancel_unknown=1, cancel_not_cancellable=1, read_task=4)
    assert target.deletes("u") == 1 and target.deletes("s") == 1 and target.deletes("f") == 0
    assert target.deletes("a") == 0
    assert target.gets() == reads + 4  # every task, the unknown id too (which must read 404)
    assert messages(m.session, RID) == [] and m.passes["held"] == 6


def test_teardown_leaves_rules_that_ran_alone() -> None:
    target = ScriptedTarget({"s": "SUCCESSFUL"})
    m = Machine(target, {"s": "SUCCESSFUL", "u": UNKNOWN}, can_read=False)
    m.ran.update(cancel_unknown=1, cancel_not_cancellable=1)
    m.teardown()
    assert target.log == [] and m.ran == Counter(cancel_unknown=1, cancel_not_cancellable=1)


def test_teardown_refuses_with_a_cancelled_handover_when_no_other_task_is_given() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    m = Machine(target, {}, can_read=False)
    m.sync()
    m.teardown()
    assert target.deletes() == 0  # nothing refusing yet: both still IN_PROGRESS
    m._cancel("b")
    m.ran.clear()
    m.teardown()
    assert target.deletes("b") == 2 and m.ran["cancel_not_cancellable"] == 1


def test_teardown_waits_for_pending_cancels_to_settle() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    m = Machine(target, {})
    m.sync()
    m.model.update(a=PENDING_CANCEL, b=PENDING_CANCEL)
    m.cancelled_at.update(a=0.0, b=0.0)
    target.tasks["b"] = "CANCELLED"
    m.ran.update(cancel_not_cancellable=1)
    m.teardown()
    m.settles.resolve()
    assert m.model == {"a": PENDING_CANCEL, "b": "CANCELLED"}
    assert m.ran["read_task"] == 0  # pending tasks are awaited, not read against the model
    assert m.passes["held"] == 1  # b settled; a did not
    [text] = messages(m.session, RID)
    assert text.startswith("after a 200 cancel, task a reads IN_PROGRESS, not CANCELLED, when the 5 s settle "
                           "window closed")
    assert text.endswith(")") and "(steps: " in text
    assert evidence(m.session, RID)[0].request.method == "GET"  # type: ignore[union-attr]


def test_teardown_reads_settled_tasks_in_one_round_trip_and_hands_pending_cancels_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "b": "IN_PROGRESS", "s": "SUCCESSFUL"})
    m = Machine(target, {"s": "SUCCESSFUL"})
    m.sync()
    m.model["a"] = PENDING_CANCEL
    m.cancelled_at["a"] = 0.0
    target.tasks["a"] = "CANCELLED"
    m.ran.update(cancel_not_cancellable=1)
    batches: list[list[str]] = []
    side_by_side = m.session.side_by_side

    def recorded(items: Any, work: Any) -> Any:
        batches.append(list(items))
        return side_by_side(batches[-1], work)

    monkeypatch.setattr(m.session, "side_by_side", recorded)
    m.teardown()
    m.settles.resolve()
    assert batches == [["s", "b"]]  # the settled tasks' final reads; a, pending, settles beside them
    assert m.model == {"s": "SUCCESSFUL", "a": "CANCELLED", "b": "IN_PROGRESS"}
    assert m.passes["held"] == 3 and outcome(m.session, RID) is not FAIL


def test_teardown_after_a_failure_reads_nothing_more() -> None:
    target = ScriptedTarget({"a": "IN_PROGRESS", "s": "SUCCESSFUL"}, on_delete=lambda t, i: 200)
    m = Machine(target, {"s": "SUCCESSFUL"})
    m.sync()
    m.model["a"] = PENDING_CANCEL
    m.cancelled_at["a"] = 0.0
    m.teardown()  # the refusing cancel of s answers 200: BEH-STATEFUL failed
    reads = target.gets()
    assert outcome(m.session, RID) is FAIL and m.ran["read_task"] == 0
    assert m.clock.sleeps == [] and reads == 3  # acquiring a, syncing s and the re-read after the mismatch


# -- whole runs -------------------------------------------------------------------------------------
def test_a_faithful_server_passes_with_every_rule_run(servers: Callable[..., Reference]) -> None:
    session = servers().session(statuses=["SUCCESSFUL", "FAILED", "PENDING"])
    stateful.stateful_model(session)
    got = result(session, RID)
    assert got.outcome is PASS
    assert set(session.stateful_rules) == set(stateful.RULES)
    assert all(count > 0 for count in session.stateful_rules.values())
    rules = ", ".join(f"{name} ×{session.stateful_rules[name]}" for name in stateful.RULES)
    # Hypothesis' first example is its simplest: the same refused cancel, step after step.
    skipped = re.fullmatch(rf"{got.evaluations} evaluations; rules ran: {rules}; (\d+) identical repeats not sent "
                           r"\(a third identical step in a row\)", got.reason)
    assert skipped is not None, got.reason
    assert int(skipped.group(1)) >= 10
    assert got.evaluations > sum(session.stateful_rules.values())  # each bystander read counts too


def test_examples_take_fresh_tasks_four_times_when_the_target_creates_them() -> None:
    # Seed 2: Hypothesis runs exactly max_examples examples (some seeds add one), 3 tasks each.
    target = ScriptedTarget({"s": "SUCCESSFUL"})
    session = scripted_session(target, provision=True, seed=2)
    stateful.run_model(session)
    assert outcome(session, RID) is PASS
    assert target.created == 4 * 3
    handed = ScriptedTarget({"s": "SUCCESSFUL", **{f"t{i}": "IN_PROGRESS" for i in range(20)}})
    session = scripted_session(handed, seed=2)
    stateful.run_model(session)
    assert sum(1 for i in range(20) if handed.gets(f"t{i}")) == 3 * 3


def test_the_fixed_tasks_are_three_known_ones_and_one_unknown_id() -> None:
    target = ScriptedTarget({"s": "SUCCESSFUL", "f": "FAILED", "p": "PENDING", "c": "CANCELLED", "a": "IN_PROGRESS"})
    session = scripted_session(target)
    fixed = stateful._fixed_tasks(session)
    assert list(fixed.items())[:3] == [("s", "SUCCESSFUL"), ("f", "FAILED"), ("p", "PENDING")]
    assert len(fixed) == 4 and list(fixed.values())[3] == UNKNOWN


def test_without_an_in_progress_task_the_model_is_not_run() -> None:
    target = ScriptedTarget({"s": "SUCCESSFUL"})
    session = scripted_session(target)
    stateful.stateful_model(session)
    assert outcome(session, RID) is NOT_RUN
    assert result(session, RID).reason == f"{NO_IN_PROGRESS} (two make the model stronger)"
    assert session.stateful_rules["cancel_in_progress"] == 0


def test_without_an_in_progress_task_a_failure_still_counts() -> None:
    session = scripted_session(ScriptedTarget({"s": "SUCCESSFUL"}, on_delete=lambda t, i: 200))
    stateful.run_model(session)
    assert outcome(session, RID) is FAIL


@pytest.mark.parametrize("no_get", [405, 501])
def test_without_get_the_read_rule_never_runs_and_the_model_is_not_run(no_get: int) -> None:
    target = ScriptedTarget({"s": "SUCCESSFUL", "a": "IN_PROGRESS", "b": "IN_PROGRESS"},
                            on_get=lambda t, i: no_get)
    session = scripted_session(target)
    stateful.run_model(session)
    assert session.stateful_rules["read_task"] == 0 and session.stateful_rules["cancel_in_progress"] > 0
    assert outcome(session, RID) is NOT_RUN
    assert result(session, RID).reason.startswith("the state machine never ran read_task (pass a task in a "
                                                  "non-cancellable status")


def test_a_404_to_the_first_read_is_no_reason_to_stop_reading() -> None:
    # The first fixed task was deleted behind the suite's back: GET still exists.
    target = ScriptedTarget({"s": "SUCCESSFUL", "a": "IN_PROGRESS", "b": "IN_PROGRESS"})
    session = scripted_session(target)
    del target.tasks["s"]
    stateful.run_model(session)
    assert outcome(session, RID) is FAIL
    assert target.gets("s") > 1  # the probe, then the model's own reads


def test_the_get_probe_is_skipped_once_a_read_showed_that_the_target_offers_get() -> None:
    def reads_of_the_first_fixed_task(read_before: str | None) -> int:
        target = ScriptedTarget({"s": "SUCCESSFUL", "a": "IN_PROGRESS", "b": "IN_PROGRESS"})
        session = scripted_session(target, seed=2)
        if read_before is not None:
            scenarios.read(session, read_before, "an earlier scenario's read")
        stateful.run_model(session)
        return target.gets("s")

    probed = reads_of_the_first_fixed_task(None)
    assert reads_of_the_first_fixed_task("a") == probed - 1
    assert reads_of_the_first_fixed_task("no-such-task") == probed  # a 404 shows nothing


@pytest.mark.parametrize(("defect", "statuses", "expected"), [
    ("cancel-wrong-task", ["SUCCESSFUL"], "also cancelled"),
    ("unknown-id-409", ["SUCCESSFUL"], "(UNKNOWN in the model) answered 409, expected 404"),
    ("recancel-200", ["CANCELLED"], "(CANCELLED in the model) answered 200, expected 409"),
    ("cancel-never-settles", ["SUCCESSFUL"], "reads IN_PROGRESS, not CANCELLED, when the 5 s settle window closed"),
    ("vanish-after-409", ["SUCCESSFUL"], "(SUCCESSFUL in the model) answered 404, expected 409"),
    ("pending-cancellable", ["PENDING"], "(PENDING in the model) answered 200, expected 409"),
])
def test_defects_the_machine_catches(servers: Callable[..., Reference], defect: str, statuses: list[str],
                                     expected: str) -> None:
    session = servers(defect).session(statuses=statuses)
    stateful.run_model(session)
    assert outcome(session, RID) is FAIL
    assert any(expected in m for m in messages(session, RID)), messages(session, RID)


def test_the_end_of_run_reconciliation_follows_the_model(servers: Callable[..., Reference]) -> None:
    ref = servers("changes-after-read")
    session = ref.session(statuses=["SUCCESSFUL"])
    session.started_monotonic = ref.clock.now
    stateful.stateful_model(session)
    assert any("left CANCELLED by this run, reads FAILED at the end of the run" in m
               for m in messages(session, RID))


def test_the_reconciliation_runs_even_when_the_model_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    target = ScriptedTarget({"s": "CANCELLED"})
    session = scripted_session(target)
    session.cancels.track("s", "BEH-CANCEL", "SUCCESSFUL", 0.0)

    def broken(session: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(stateful, "run_model", broken)
    with pytest.raises(RuntimeError):
        stateful.stateful_model(session)
    assert outcome(session, "BEH-CANCEL") is FAIL


def test_plan() -> None:
    plan = get(RID).plan
    assert plan is not None
    assert plan(scripted_session(ScriptedTarget())) == ["NOT RUN: no IN_PROGRESS task given"]
    assert plan(scripted_session(ScriptedTarget(), provision=True))[0].startswith(
        f"{stateful.STEPS} random (seeded) DELETE/GET steps per example")
    assert plan(scripted_session(ScriptedTarget({"a": "IN_PROGRESS"})))[0].startswith("20 random")


def test_draw_helper_reads_sampled_from() -> None:
    assert Draw(1).draw(st.sampled_from(["x", "y"])) == "y"


def test_the_same_seed_sends_the_same_requests() -> None:
    logs = []
    for _ in range(2):
        target = ScriptedTarget({"s": "SUCCESSFUL", "f": "FAILED", **{f"t{i}": "IN_PROGRESS" for i in range(12)}})
        stateful.run_model(scripted_session(target, seed=7))
        # The same set: reads that go out side by side (the sync's) may arrive in either order.
        logs.append(sorted(target.log))
    assert logs[0] == logs[1]
    other = ScriptedTarget({"s": "SUCCESSFUL", "f": "FAILED", **{f"t{i}": "IN_PROGRESS" for i in range(12)}})
    stateful.run_model(scripted_session(other, seed=8))
    assert sorted(other.log) != logs[0]

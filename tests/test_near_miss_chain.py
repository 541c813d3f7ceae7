"""The schema phase's chain of one known refusable task: its cancel, then its near-miss ids,
judged against a scripted target (no server, no clock)."""

from __future__ import annotations

from typing import Any

from conformance import identity
from conformance.engine.generation import NearMiss, Probe
from conformance.model import Outcome
from conformance.suite.test_schema import Chain, chain_order, send_chain
from tests.scenario_harness import ScriptedTarget, messages, outcome, scripted_session

PASS, FAIL = Outcome.PASS, Outcome.FAIL

TASK = "6f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
PREFIX, SUFFIX, FLIPPED = TASK[:-1], TASK + "0", TASK.upper()


def miss(raw: str, family: str) -> NearMiss:
    return NearMiss(Probe(raw, f"near-miss: {family}"), TASK, "SUCCESSFUL", (identity.family(family),))


def chain() -> Chain:
    return Chain(Probe(TASK, "known SUCCESSFUL task", known_status="SUCCESSFUL"),
                 [miss(PREFIX, "prefix-match"), miss(SUFFIX, "truncation"), miss(FLIPPED, "uuid-hex-case")])


def run(on_delete: Any = None) -> tuple[ScriptedTarget, Any]:
    target = ScriptedTarget({TASK: "SUCCESSFUL"}, on_delete=on_delete)
    session = scripted_session(target)
    send_chain(session, chain())
    return target, session


def changes_task(on: str, to: str, answer: int) -> Any:
    """A scripted DELETE: cancelling id `on` answers `answer` and turns the known task `to`."""
    def on_delete(target: ScriptedTarget, task_id: str) -> Any:
        if task_id != on:
            return ...
        target.tasks[TASK] = to
        return answer
    return on_delete


def test_a_correct_target_passes_with_one_read_per_group() -> None:
    target, session = run()
    assert outcome(session, "BEH-UNKNOWN-404") is PASS and outcome(session, "BEH-NOT-CANCELLABLE") is PASS
    # The refusal's read is the baseline; then one read after the ids that must name no task and
    # one after the case-flipped id, which may name the task.
    assert target.log == [("DELETE", TASK), ("GET", TASK), ("DELETE", PREFIX), ("DELETE", SUFFIX), ("GET", TASK),
                          ("DELETE", FLIPPED), ("GET", TASK)]


def test_a_near_miss_that_reaches_the_task_is_named_by_its_answer() -> None:
    _, session = run(lambda t, i: 409 if i == SUFFIX else ...)
    assert outcome(session, "BEH-UNKNOWN-404") is FAIL
    assert messages(session, "BEH-UNKNOWN-404") == [
        f"near-miss id {SUFFIX!r} (truncation of SUCCESSFUL task {TASK}) answered 409; an id that names no task "
        "must answer 404, and this one reached a task: resolved after cutting characters beyond the id's length "
        "(column width) [truncation]"]


def test_a_change_after_the_ids_that_name_no_task_names_them_all() -> None:
    _, session = run(changes_task(PREFIX, "CANCELLED", 404))
    assert messages(session, "BEH-UNKNOWN-404") == [
        f"after cancels of near-miss ids {PREFIX!r}, {SUFFIX!r} (prefix-match, truncation of SUCCESSFUL task "
        f"{TASK}) the task reads CANCELLED, not SUCCESSFUL: one of them reached it (resolved as a prefix of the "
        "task's id [prefix-match]; resolved after cutting characters beyond the id's length (column width) "
        "[truncation])"]
    # The case-flipped id after it is judged against what the task read then: no second finding.


def test_a_case_flipped_id_that_names_the_task_may_change_it_as_the_task_s_own_cancel_would() -> None:
    # The task's own id answered 409: the same task.
    _, session = run(changes_task(FLIPPED, "CANCELLED", 409))
    assert outcome(session, "BEH-UNKNOWN-404") is PASS


def test_a_case_flipped_id_that_answers_404_must_leave_the_task_alone() -> None:
    _, session = run(changes_task(FLIPPED, "FAILED", 404))
    assert messages(session, "BEH-UNKNOWN-404") == [
        f"after cancels of near-miss ids {FLIPPED!r} (uuid-hex-case of SUCCESSFUL task {TASK}) the task reads "
        "FAILED, not SUCCESSFUL: one of them reached it (resolved with the UUID's hex digits in another case (an "
        "equality RFC 9562 grants) [uuid-hex-case])"]


def test_a_case_flipped_id_with_another_answer_fails() -> None:
    _, session = run(lambda t, i: 200 if i == FLIPPED else ...)
    assert messages(session, "BEH-UNKNOWN-404") == [
        f"uuid-hex-case id {FLIPPED!r} of SUCCESSFUL task {TASK} answered 200; expected 404 (no task) or, as the "
        "task's own id, 409"]


def test_chains_go_one_of_each_status_first() -> None:
    # The end-of-run re-read waits for the first refusal in each status: with more chains than
    # workers, no status may queue behind all of another's.
    def known(status: str, n: int, misses: int) -> Chain:
        return Chain(Probe(f"{status}-{n}", f"known {status} task", known_status=status),
                     [NearMiss(Probe(f"{status}-{n}-{i}", "near-miss: prefix"), f"{status}-{n}", status,
                               (identity.family("prefix-match"),))
                      for i in range(misses)])

    chains = [known("SUCCESSFUL", 1, 2), known("SUCCESSFUL", 2, 3), known("SUCCESSFUL", 3, 1),
              known("FAILED", 1, 1), known("PENDING", 1, 2), known("FAILED", 2, 4)]
    assert [c.known.raw for c in chain_order(chains)] == [
        "FAILED-2", "SUCCESSFUL-2", "PENDING-1", "SUCCESSFUL-1", "FAILED-1", "SUCCESSFUL-3"]

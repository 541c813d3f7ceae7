"""Asynchronous cancellation: the settle/poll logic (injected clock and sleep, no wall clock),
the race and state-machine judgements, and end-to-end runs against the embedded reference server
for the async variations (CONFORMANT) and the cancellation defects (exactly their requirements)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from scenario_harness import FakeClock

from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.model import Outcome, Profile
from conformance.options import RunOptions
from conformance.reference.defects import DEFECTS
from conformance.requirements import scenarios, stateful
from conformance.requirements.scenarios import CancelLedger, Reading, await_cancelled, judge_race, settle_violation


def fake_session(clock: FakeClock, settle_timeout: float = 30.0) -> Any:
    return SimpleNamespace(clock=clock, sleep=clock.sleep, settle_timeout=settle_timeout, cancels=CancelLedger())


def scripted(monkeypatch: pytest.MonkeyPatch, statuses: list[str | None]) -> list[str]:
    """Make scenarios.read answer the given statuses in turn (the last one forever)."""
    reads: list[str] = []

    def read(session: Any, task_id: str, purpose: str) -> Reading:
        status = statuses[min(len(reads), len(statuses) - 1)]
        reads.append(purpose)
        return Reading(SimpleNamespace(error="reset"), status, 200 if status else 404)  # type: ignore[arg-type]

    monkeypatch.setattr(scenarios, "read", read)
    return reads


def test_synchronous_cancel_reads_cancelled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    session = fake_session(clock)
    reads = scripted(monkeypatch, ["CANCELLED"])
    settling = await_cancelled(session, "t1", "p", since=0.0)
    assert settling.settled and settling.synchronous
    assert len(reads) == 1 and clock.sleeps == []
    assert session.cancels.mode() == {"mode": "synchronous", "settle_seconds": None}


def test_asynchronous_cancel_polls_with_doubling_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    session = fake_session(clock)
    reads = scripted(monkeypatch, ["IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "CANCELLED"])
    settling = await_cancelled(session, "t1", "p", since=0.0)
    assert settling.settled and not settling.synchronous
    assert len(reads) == 4
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert session.cancels.mode() == {"mode": "asynchronous", "settle_seconds": pytest.approx(0.7)}


def test_never_settling_cancel_stops_at_the_window_with_a_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    session = fake_session(clock, settle_timeout=10.0)
    scripted(monkeypatch, ["IN_PROGRESS"])
    settling = await_cancelled(session, "t1", "p", since=0.0)
    assert not settling.settled
    assert max(clock.sleeps) == pytest.approx(2.0)  # the backoff is capped
    assert sum(clock.sleeps) == pytest.approx(10.0)  # and ends exactly at the window
    text = str(settle_violation(settling, 10.0))
    assert "reads IN_PROGRESS, not CANCELLED, when the 10 s settle window closed" in text
    assert "0.00s IN_PROGRESS, 0.10s IN_PROGRESS" in text
    assert session.cancels.mode() == {"mode": None, "settle_seconds": None}


def test_a_clock_that_never_advances_cannot_loop_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    session = SimpleNamespace(clock=lambda: 0.0, sleep=lambda s: None, settle_timeout=30.0, cancels=CancelLedger())
    reads = scripted(monkeypatch, ["IN_PROGRESS"])
    assert not await_cancelled(session, "t1", "p", since=0.0).settled  # type: ignore[arg-type]
    assert len(reads) == scenarios.SETTLE_MAX_READS


@pytest.mark.parametrize("final", ["FAILED", "SUCCESSFUL", None])
def test_any_other_final_status_stops_polling_and_fails(monkeypatch: pytest.MonkeyPatch, final: str | None) -> None:
    clock = FakeClock()
    session = fake_session(clock)
    reads = scripted(monkeypatch, ["IN_PROGRESS", final])
    settling = await_cancelled(session, "t1", "p", since=0.0)
    assert not settling.settled and len(reads) == 2
    assert "not CANCELLED" in str(settle_violation(settling, 30.0))


@pytest.mark.parametrize(
    ("codes", "pending", "asynchronous", "problems"),
    [
        ([200, 409, 409, 409], False, False, 0),
        ([200, 200, 409, 409], False, False, 1),  # a synchronous target let two cancels win
        ([200, 200, 200, 200], True, False, 0),  # pending right after the race: asynchronous
        ([200, 200, 409, 409], False, True, 0),  # the run saw cancels settle later
        ([409, 409, 409, 409], False, False, 1),  # zero winners
        ([200, 404, 404, 404], False, False, 1),  # 404 losers
        ([200, 404, 404, 404], True, True, 1),  # ... asynchronous or not
        ([200, 500, 409, 409], False, False, 1),
        ([204, 409, 409, 409], False, False, 0),  # a 204 winner is SCH-STATUS's finding, not the race's
        ([202, 202, 409, 409], False, False, 1),  # ... but two winners on a synchronous target are
    ],
)
def test_judge_race(codes: list[int], pending: bool, asynchronous: bool, problems: int) -> None:
    assert len(judge_race(codes, 4, "t", pending=pending, asynchronous=asynchronous)) == problems


def test_state_model_knows_pending_cancels() -> None:
    assert stateful.expected_cancel_status(stateful.PENDING_CANCEL) == {200, 409}
    assert stateful.expected_cancel_status("CANCELLED") == {409}
    assert stateful.expected_cancel_status("IN_PROGRESS") == {200}
    assert stateful.read_matches(stateful.PENDING_CANCEL, "IN_PROGRESS", 200, overdue=False)
    assert not stateful.read_matches(stateful.PENDING_CANCEL, "IN_PROGRESS", 200, overdue=True)
    assert stateful.read_matches(stateful.PENDING_CANCEL, "CANCELLED", 200, overdue=True)
    assert not stateful.read_matches(stateful.PENDING_CANCEL, "FAILED", 200, overdue=False)
    assert not stateful.read_matches("CANCELLED", "FAILED", 200, overdue=False)


def test_refused_tasks_may_finish_but_never_end_cancelled() -> None:
    assert scenarios.unchanged("IN_PROGRESS", "SUCCESSFUL")
    assert not scenarios.unchanged("IN_PROGRESS", "CANCELLED")
    assert not scenarios.unchanged("SUCCESSFUL", "CANCELLED")
    assert scenarios.unchanged("PENDING", "IN_PROGRESS")


# -- end to end against the embedded reference server -----------------------------------------
VARIATIONS = ("async-cancel-repeat-200", "async-cancel-repeat-409", "non-cancellable-in-progress",
              "task-finishes-before-use")
DEFECTIVE = ("cancel-never-settles", "changes-after-read", "refused-cancel-changes-task", "vanish-after-409",
             "race-zero-winners", "race-404-losers", "cancel-not-applied", "racing-cancels", "forget-cancelled",
             "recancel-200", "cancel-wrong-task")


@pytest.fixture
def run_with() -> Iterator[Any]:
    def run(defect: str, **extra: Any) -> Any:
        options = RunOptions(defects=(defect,), seed=1, max_examples=5, profile=Profile.BEHAVIOR,
                             reference_settle_seconds=0.3, settle_timeout=2.0, **extra)
        with open_session(options) as session:
            return execute(session), session

    yield run


def failed(run: Any) -> set[str]:
    return {r.requirement.id for r in run.results if r.outcome is Outcome.FAIL}


@pytest.mark.slow
@pytest.mark.parametrize("defect", VARIATIONS)
def test_variation_is_conformant(run_with: Any, defect: str) -> None:
    run, session = run_with(defect)
    assert failed(run) == set()
    assert run.conformant
    outcomes = {r.requirement.id: r.outcome for r in run.results}
    assert outcomes["BEH-CANCEL"] is Outcome.PASS
    if defect.startswith("async-cancel"):
        assert run.cancel_mode["mode"] == "asynchronous"
        assert outcomes["BEH-RACE"] is Outcome.PASS and outcomes["BEH-RECANCEL"] is Outcome.PASS
    if defect == "non-cancellable-in-progress":
        # The isCancellable:false tasks were judged (409, unchanged), not skipped.
        assert len(session.cancels.uncancellable) == 2
        judged = [f for r in run.results if r.requirement.id == "BEH-NOT-CANCELLABLE" for f in r.findings]
        assert outcomes["BEH-NOT-CANCELLABLE"] is Outcome.PASS and judged is not None


@pytest.mark.slow
@pytest.mark.parametrize("defect", DEFECTIVE)
def test_defect_fails_exactly_its_requirements(run_with: Any, defect: str) -> None:
    run, _ = run_with(defect)
    assert not run.conformant
    assert failed(run) == set(DEFECTS[defect].requirements)


@pytest.mark.slow
def test_sync_default_reports_the_synchronous_mode_and_every_stateful_rule(run_with: Any) -> None:
    run, session = run_with("minimal-error")
    assert run.cancel_mode == {"mode": "synchronous", "settle_seconds": None}
    assert all(session.stateful_rules[name] > 0 for name in stateful.RULES)
    assert run.to_json()["cancel_mode"]["mode"] == "synchronous"


def test_finished_task_is_never_sent_a_delete_once_seen_finished() -> None:
    options = RunOptions(defects=("task-finishes-before-use",), seed=1, max_examples=5, profile=Profile.BEHAVIOR,
                         settle_timeout=2.0)
    with open_session(options) as session:
        finishing = session.provision.service.finishes_on_read
        run = execute(session)
        log = [r for r in session.provision.request_log if r.task_id == finishing]
    assert run.conformant and failed(run) == set()
    seen = next(i for i, r in enumerate(log) if r.method == "GET" and r.task_status_before == "SUCCESSFUL")
    assert [r for r in log[seen:] if r.method == "DELETE"] == []
    assert any(finishing in note for note in run.notes)


def test_every_uncancellable_task_gives_an_actionable_not_run() -> None:
    ledger = CancelLedger(uncancellable=["a"])
    reason = scenarios.no_task_reason(SimpleNamespace(cancels=ledger))  # type: ignore[arg-type]
    assert "isCancellable:false" in reason and "--task IN_PROGRESS=<id>" in reason


def test_settle_timeout_reaches_the_options_from_the_command_line_and_is_validated() -> None:
    from conformance.config.from_click import build_options
    from conformance.errors import OptionsError

    assert build_options({"settle_timeout": 12.5}, environ={}).settle_timeout == 12.5
    assert build_options({}, environ={}).settle_timeout is None
    with pytest.raises(OptionsError, match="--settle-timeout"):
        RunOptions(settle_timeout=-1).validate()


def test_embedded_runs_default_to_the_short_window_and_real_targets_to_30_s() -> None:
    from conformance.options import DEFAULT_SETTLE_TIMEOUT, EMBEDDED_SETTLE_TIMEOUT

    with open_session(RunOptions(dry_run=True)) as session:
        assert session.settle_timeout == EMBEDDED_SETTLE_TIMEOUT
    with open_session(RunOptions(dry_run=True, settle_timeout=7.0)) as session:
        assert session.settle_timeout == 7.0
    assert DEFAULT_SETTLE_TIMEOUT == 30.0


@pytest.mark.slow
def test_stateful_is_not_run_unless_every_rule_ran(monkeypatch: pytest.MonkeyPatch, run_with: Any) -> None:
    # A rule the machine never runs (here: one it does not have) must turn BEH-STATEFUL into NOT RUN.
    monkeypatch.setattr(stateful, "RULES", (*stateful.RULES, "cancel_on_tuesdays"))
    run, session = run_with("minimal-error")
    result = next(r for r in run.results if r.requirement.id == "BEH-STATEFUL")
    assert result.outcome is Outcome.NOT_RUN
    assert "never ran cancel_on_tuesdays" in result.reason
    assert session.stateful_rules["cancel_on_tuesdays"] == 0 and session.stateful_rules["read_task"] > 0

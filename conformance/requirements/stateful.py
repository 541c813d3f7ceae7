"""BEH-STATEFUL: a Hypothesis state machine interleaves cancels and reads against a model.

The model starts from what the target says (GET) about each tracked task, so every example
continues from the server's real state instead of assuming a reset between examples. On a
mismatch the violation is recorded with the steps that led to it and the model re-reads the
task; nothing is shrunk, since shrinking would re-send requests to a server that keeps state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from conformance.model import Exchange, Violation
from conformance.requirements.scenarios import (
    FINAL,
    acquire_in_progress,
    behavior,
    cancel,
    read,
    status_of,
    unknown_ids,
)
from conformance.tasks import CANCELLABLE, CANCELLED

if TYPE_CHECKING:
    from conformance.engine.session import SuiteSession

RID = "BEH-STATEFUL"
UNKNOWN = "UNKNOWN"
HISTORY = 8


def expected_cancel_status(model_status: str) -> int:
    if model_status == UNKNOWN:
        return 404
    return 200 if model_status == CANCELLABLE else 409


def build_machine(session: SuiteSession, tracked: dict[str, str], can_read: bool) -> type[RuleBasedStateMachine]:
    # Insertion order (by role), not the ids themselves: the same seed then walks the same steps.
    ids = list(tracked)

    class CancelModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, str] = dict(tracked)
            self.steps: list[str] = []

        @initialize()
        def sync(self) -> None:
            if can_read:
                for task_id in ids:
                    self._resync(task_id)

        def _resync(self, task_id: str) -> None:
            if self.model[task_id] == UNKNOWN:
                return
            reading = read(session, task_id, f"{RID}: sync model")
            if reading.available:
                self.model[task_id] = str(reading.status)

        def _fail(self, message: str, exchange: Exchange, task_id: str) -> None:
            trail = " -> ".join(self.steps[-HISTORY:])
            session.recorder.record(RID, [Violation(f"{message} (steps: {trail})")], exchange)
            if can_read:
                self._resync(task_id)

        @rule(task_id=st.sampled_from(ids))
        def cancel_task(self, task_id: str) -> None:
            expected_state = self.model[task_id]
            expected = expected_cancel_status(expected_state)
            exchange = cancel(session, task_id, f"{RID}: cancel ({expected_state} in the model)")
            got = status_of(exchange)
            self.steps.append(f"DELETE {task_id[:8]}={got}")
            if got != expected:
                self._fail(f"cancel of {task_id} ({expected_state} in the model) answered {got or exchange.error}, "
                           f"expected {expected}", exchange, task_id)
                return
            session.recorder.record(RID, [], exchange)
            if expected == 200:
                self.model[task_id] = CANCELLED
                if can_read:
                    self._check_bystanders(task_id)

        def _check_bystanders(self, cancelled: str) -> None:
            # A cancel must touch only its own task: a server that also cancels a neighbour
            # passes every single-task check.
            for other in ids:
                if other == cancelled or self.model[other] != CANCELLABLE:
                    continue
                reading = read(session, other, f"{RID}: bystander of a cancel")
                self.steps.append(f"GET {other[:8]}={reading.status or reading.http_status}")
                if reading.status == CANCELLED:
                    self._fail(f"cancelling {cancelled} also cancelled {other}", reading.exchange, other)
                else:
                    session.recorder.record(RID, [], reading.exchange)

        if can_read:

            @rule(task_id=st.sampled_from(ids))
            def read_task(self, task_id: str) -> None:
                expected_state = self.model[task_id]
                reading = read(session, task_id, f"{RID}: read ({expected_state} in the model)")
                self.steps.append(f"GET {task_id[:8]}={reading.status or reading.http_status}")
                if expected_state == UNKNOWN:
                    ok = reading.http_status == 404
                elif reading.status == expected_state:
                    ok = True
                else:
                    # Real IN_PROGRESS tasks finish on their own and PENDING ones start: not a defect.
                    ok = (expected_state == CANCELLABLE and reading.status in FINAL - {CANCELLED}) or (
                        expected_state == "PENDING" and reading.status == CANCELLABLE
                    )
                    if ok and reading.status is not None:
                        self.model[task_id] = reading.status
                if not ok:
                    self._fail(f"{task_id} reads {reading.describe()}, the model expects {expected_state}",
                               reading.exchange, task_id)
                    return
                session.recorder.record(RID, [], reading.exchange)

    return CancelModel


def _plan(session: SuiteSession) -> list[str]:
    given = session.pool.given.get(CANCELLABLE, [])
    if not given and session.provision is None:
        return ["NOT RUN: no IN_PROGRESS task given"]
    return ["15 interleaved DELETE/GET steps per example over up to 3 IN_PROGRESS tasks handed over, "
            "3 known tasks in other statuses and 1 random unknown id"]


@behavior(RID, title="Interleaved cancels and reads of known and unknown ids match a model of task states",
          plan=_plan)
def stateful_model(session: SuiteSession) -> None:
    examples = 3 if session.provision is not None else 1
    for _ in range(examples):
        tracked = _tracked_tasks(session)
        if tracked is None:
            return
        first = next(iter(tracked))
        can_read = read(session, first, f"{RID}: does the target offer GET?").http_status not in (405, 501)
        machine = build_machine(session, tracked, can_read)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=1,
                stateful_step_count=15,
                database=None,
                # The same run sends the same steps; ids differ only where the target mints them.
                derandomize=True,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )


def _tracked_tasks(session: SuiteSession) -> dict[str, str] | None:
    tracked: dict[str, Any] = {}
    for _ in range(3):
        acquired = acquire_in_progress(session, RID)
        if acquired is None:
            break
        tracked[acquired[0]] = CANCELLABLE
    if not tracked:
        session.recorder.not_run(RID, "no IN_PROGRESS task given: pass --task IN_PROGRESS=<id> (two make "
                                 "the model stronger; they will be cancelled)")
        return None
    for status, task_id in session.pool.non_cancellable()[:3]:
        tracked[task_id] = status
    for task_id in unknown_ids(session, 1):
        tracked[task_id] = UNKNOWN
    return tracked

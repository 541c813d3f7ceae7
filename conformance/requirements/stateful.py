"""BEH-STATEFUL: a Hypothesis state machine interleaves cancels and reads against a model.

The model starts from what the target says (GET) about each tracked task, so every example
continues from the server's real state instead of assuming a reset between examples. A task
cancelled with 200 is "pending-cancel" in the model until it reads CANCELLED: it may read
IN_PROGRESS meanwhile (asynchronous targets), a repeat cancel may answer 200 or 409, and it must
read CANCELLED within the settle window. On a mismatch the violation is recorded with the steps
that led to it and the model re-reads the task; nothing is shrunk, since shrinking would re-send
requests to a server that keeps state.

A step that would send the same request as the two steps before it, with the model expecting
the same of it, is not sent: its answer was judged twice already, and on a target that takes
50 ms an answer, Hypothesis' first (simplest) example alone would spend about a second repeating
one refused cancel sixteen times. Such steps are counted in the remark.

Examples are random but drawn from the run's seed. Passing evaluations are committed only when
every rule ran at least once: a machine that never cancelled a non-cancellable task (say) has not
shown what BEH-STATEFUL claims, and is reported NOT RUN with the rules it missed.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import TYPE_CHECKING

from conformance.model import Exchange, Violation
from conformance.requirements.scenarios import (
    FINAL,
    NO_GET,
    PendingSettles,
    Settling,
    acquire_several,
    behavior,
    cancel,
    no_task_reason,
    read,
    reconcile,
    settle_violation,
    status_of,
    unknown_ids,
)
from conformance.tasks import CANCELLABLE, CANCELLED

if TYPE_CHECKING:
    from hypothesis.stateful import RuleBasedStateMachine

    from conformance.engine.session import SuiteSession

RID = "BEH-STATEFUL"
UNKNOWN = "UNKNOWN"
PENDING_CANCEL = "PENDING_CANCEL"
HISTORY = 8
STEPS = 20
# Identical steps in a row that are sent (see the module docstring).
REPEATS = 2
SKIPPED = "identical repeats not sent"
RULES = ("cancel_in_progress", "cancel_not_cancellable", "cancel_unknown", "read_task")


def expected_cancel_status(model_status: str) -> frozenset[int]:
    if model_status == UNKNOWN:
        return frozenset({404})
    if model_status == CANCELLABLE:
        return frozenset({200})
    if model_status == PENDING_CANCEL:
        # "Multiple cancel requests will be treated as a single cancelation request."
        return frozenset({200, 409})
    return frozenset({409})


def read_matches(model_status: str, status: str | None, http_status: int | None, *, overdue: bool) -> bool:
    """Whether a read agrees with the model (status None: the GET gave no task status)."""
    if model_status == UNKNOWN:
        return http_status == 404
    if status == model_status:
        return True
    if model_status == PENDING_CANCEL:
        return status == CANCELLED or (status == CANCELLABLE and not overdue)
    # Real IN_PROGRESS tasks finish on their own and PENDING ones start: not a defect.
    return (model_status == CANCELLABLE and status in FINAL - {CANCELLED}) or (
        model_status == "PENDING" and status == CANCELLABLE)


def build_machine(session: SuiteSession, fixed: dict[str, str], can_read: bool,
                  passes: Counter[str], ran: Counter[str], settles: PendingSettles) -> type[RuleBasedStateMachine]:
    """The machine; each example takes up to 3 fresh IN_PROGRESS tasks next to the `fixed` ones
    (tasks in other statuses and unknown ids), since the previous example cancelled its own.
    An example's cancels still pending at its end are handed to `settles`, which judges them
    while the next examples run (the caller resolves it)."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

    others = [i for i, s in fixed.items() if s != UNKNOWN]
    counting = threading.Lock()
    unknown = [i for i, s in fixed.items() if s == UNKNOWN]

    class CancelModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, str] = dict(fixed)
            self.in_progress: list[str] = []
            self.cancelled_at: dict[str, float] = {}
            self.steps: list[str] = []
            self.last_cancelled: str | None = None
            self.last_step: tuple[str, str, str] | None = None
            self.repeats = 0

        @initialize()
        def sync(self) -> None:
            # The fresh tasks' precondition reads (they read IN_PROGRESS: nothing to re-read) and
            # the re-reads of the known tasks are independent: one round trip, side by side.
            acquired: list[str] = []

            def step(task_id: str | None) -> None:
                if task_id is None:
                    acquired.extend(task_id for task_id, _ in acquire_several(session, 3, RID))
                else:
                    self._resync(task_id)

            session.side_by_side([None, *(list(self.model) if can_read else [])], step)
            for task_id in acquired:
                self.in_progress.append(task_id)
                self.model[task_id] = CANCELLABLE

        def _resync(self, task_id: str) -> None:
            if self.model[task_id] == UNKNOWN:
                return
            reading = read(session, task_id, f"{RID}: sync model")
            if reading.available and not (self.model[task_id] == PENDING_CANCEL
                                          and reading.status == CANCELLABLE):
                self.model[task_id] = str(reading.status)

        def _sends(self, rule_name: str, method: str, task_id: str) -> bool:
            """Whether a rule's request goes out (counted as the rule's run): not a third
            identical one in a row (counted as skipped)."""
            step = (method, task_id, self.model[task_id])
            self.repeats = self.repeats + 1 if step == self.last_step else 1
            self.last_step = step
            sent = self.repeats <= REPEATS
            ran[rule_name if sent else SKIPPED] += 1
            return sent

        def _held(self) -> None:
            # Reads go out side by side (final reads, bystanders): count under a lock.
            with counting:
                passes["held"] += 1

        def _fail(self, message: str, exchange: Exchange, task_id: str) -> None:
            trail = " -> ".join(self.steps[-HISTORY:])
            session.recorder.record(RID, [Violation(f"{message} (steps: {trail})")], exchange)
            if can_read:
                self._resync(task_id)

        def _cancel(self, task_id: str) -> None:
            expected_state = self.model[task_id]
            expected = expected_cancel_status(expected_state)
            exchange = cancel(session, task_id, f"{RID}: cancel ({expected_state} in the model)")
            got = status_of(exchange)
            # The model judges which states accept a cancel; which 2xx says so is SCH-STATUS's.
            if got is not None and 200 <= got < 300:
                got = 200
            self.steps.append(f"DELETE {task_id[:8]}={got}")
            if got not in expected:
                self._fail(f"cancel of {task_id} ({expected_state} in the model) answered {got or exchange.error}, "
                           f"expected {' or '.join(map(str, sorted(expected)))}", exchange, task_id)
                return
            self._held()
            if got == 409 and expected_state != UNKNOWN:
                keeps = CANCELLED if expected_state == PENDING_CANCEL else expected_state
                session.cancels.track(task_id, RID, keeps, session.clock())
            if got == 200 and expected_state == CANCELLABLE:
                self.model[task_id] = PENDING_CANCEL
                self.cancelled_at[task_id] = session.clock()
                session.cancels.track(task_id, RID, CANCELLED, session.clock(), cancelled=True)
                self.last_cancelled = task_id

        @precondition(lambda self: any(self.model[i] == CANCELLABLE for i in self.in_progress))
        @rule(data=st.data())
        def cancel_in_progress(self, data: st.DataObject) -> None:
            choices = [i for i in self.in_progress if self.model[i] == CANCELLABLE]
            task_id = data.draw(st.sampled_from(choices))
            if self._sends("cancel_in_progress", "DELETE", task_id):
                self._cancel(task_id)

        @precondition(lambda self: bool(others) or any(self.model[i] != CANCELLABLE for i in self.in_progress))
        @rule(data=st.data())
        def cancel_not_cancellable(self, data: st.DataObject) -> None:
            # Tasks in other statuses, and the handed-over ones once cancelled (pending or done).
            choices = others + [i for i in self.in_progress if self.model[i] != CANCELLABLE]
            task_id = data.draw(st.sampled_from(choices))
            if self._sends("cancel_not_cancellable", "DELETE", task_id):
                self._cancel(task_id)

        @precondition(lambda self: bool(unknown))
        @rule(data=st.data())
        def cancel_unknown(self, data: st.DataObject) -> None:
            task_id = data.draw(st.sampled_from(unknown))
            if self._sends("cancel_unknown", "DELETE", task_id):
                self._cancel(task_id)

        @precondition(lambda self: can_read)
        @rule(data=st.data())
        def read_task(self, data: st.DataObject) -> None:
            task_id = data.draw(st.sampled_from(list(self.model)))
            if self._sends("read_task", "GET", task_id):
                self._read(task_id, "read")

        def _read(self, task_id: str, why: str) -> bool:
            expected_state = self.model[task_id]
            reading = read(session, task_id, f"{RID}: {why} ({expected_state} in the model)")
            self.steps.append(f"GET {task_id[:8]}={reading.status or reading.http_status}")
            overdue = session.clock() - self.cancelled_at.get(task_id, session.clock()) > session.settle_timeout
            if not read_matches(expected_state, reading.status, reading.http_status, overdue=overdue):
                self._fail(f"{task_id} reads {reading.describe()}, the model expects {expected_state}"
                           + (" within the settle window" if expected_state == PENDING_CANCEL else ""),
                           reading.exchange, task_id)
                return False
            if reading.status is not None and reading.status != expected_state and not (
                    expected_state == PENDING_CANCEL and reading.status == CANCELLABLE):
                self.model[task_id] = reading.status
            self._held()
            return True

        @invariant()
        def bystanders_untouched(self) -> None:
            # A cancel must touch only its own task: a server that also cancels a neighbour
            # passes every single-task check. Checked after every step that cancelled something.
            cancelled, self.last_cancelled = self.last_cancelled, None
            if cancelled is None or not can_read:
                return
            def look(other: str) -> None:
                reading = read(session, other, f"{RID}: bystander of a cancel")
                self.steps.append(f"GET {other[:8]}={reading.status or reading.http_status}")
                if reading.status == CANCELLED:
                    self._fail(f"cancelling {cancelled} also cancelled {other}", reading.exchange, other)
                else:
                    self._held()

            # Reads of different bystanders are independent: side by side.
            session.side_by_side([other for other in self.in_progress
                                  if other != cancelled and self.model[other] == CANCELLABLE], look)

        @invariant()
        def pending_cancels_settle(self) -> None:
            # Once a pending cancel is older than the settle window, it must read CANCELLED.
            if not can_read:
                return
            for task_id, at in list(self.cancelled_at.items()):
                if self.model[task_id] == PENDING_CANCEL and session.clock() - at > session.settle_timeout:
                    self._read(task_id, "pending cancel past the settle window")

        def teardown(self) -> None:
            # Random draws may leave a rule unexercised (the first example is Hypothesis' simplest):
            # each kind of cancel the model knows is then made once, deterministically, so the
            # verdict never hangs on a draw.
            if unknown and not ran["cancel_unknown"]:
                ran["cancel_unknown"] += 1
                self._cancel(unknown[0])
            refusing = others + [i for i in self.in_progress if self.model[i] not in (CANCELLABLE, UNKNOWN)]
            if refusing and not ran["cancel_not_cancellable"]:
                ran["cancel_not_cancellable"] += 1
                self._cancel(refusing[0])
            # Once BEH-STATEFUL has failed, waiting out another settle window adds cost, not evidence.
            if not can_read or session.recorder.failures_for([RID]):
                return
            # Every example ends by reading each settled task against the model, so the read rule
            # is judged in every example, not only when the random draws happen to pick it, and
            # by waiting for each pending cancel to settle.
            settled = [task_id for task_id in self.model if self.model[task_id] != PENDING_CANCEL]
            pending = [task_id for task_id in self.cancelled_at if self.model[task_id] == PENDING_CANCEL]
            ran["read_task"] += len(settled)
            # The steps that led here, taken before the reads below add theirs in no fixed order.
            trail = " -> ".join(self.steps[-HISTORY:])

            def judge(settling: Settling) -> None:
                if settling.settled:
                    self.model[settling.task_id] = CANCELLED
                    self._held()
                else:
                    violation = settle_violation(settling, session.settle_timeout)
                    session.recorder.record(RID, [Violation(f"{violation} (steps: {trail})")],
                                            settling.final.exchange)

            # A pending cancel is this example's own task (the next example takes fresh ones),
            # so its window need not hold the next example up: it settles beside what follows.
            for task_id in pending:
                settles.add(task_id, f"{RID}: wait for a pending cancel", self.cancelled_at[task_id], judge)
            # Reads of different tasks change nothing: they go out side by side.
            session.side_by_side(settled, lambda task_id: self._read(task_id, "final read"))

    return CancelModel


def _plan(session: SuiteSession) -> list[str]:
    given = session.pool.given.get(CANCELLABLE, [])
    if not given and session.provision is None:
        return ["NOT RUN: no IN_PROGRESS task given"]
    return [f"{STEPS} random (seeded) DELETE/GET steps per example over up to 3 IN_PROGRESS tasks handed over, "
            "3 known tasks in other statuses and 1 random unknown id (a step repeating the two before it "
            "exactly is not sent); then every task the run touched is re-read"]


@behavior(RID, title="Interleaved cancels and reads of known and unknown ids match a model of task states",
          plan=_plan, takes_in_progress=True, beside=True)
def stateful_model(session: SuiteSession) -> None:
    try:
        run_model(session)
    finally:
        # The last scenario: every task the run touched is re-read once, after the others ran
        # (they may run side by side with this one: it waits for them first).
        session.after_other_scenarios(RID)
        reconcile(session)


def run_model(session: SuiteSession) -> None:
    # Imported here, in the state machine's own thread: loading Hypothesis costs about 0.2 s,
    # which would otherwise come before the run's first request (see engine.lanes).
    from hypothesis import HealthCheck, Phase, seed, settings
    from hypothesis.stateful import run_state_machine_as_test

    # The first example Hypothesis generates is its simplest one (the same rule over and over);
    # the later ones are random, drawn from the run's seed.
    # How many the budget plan allotted (engine.budget: the first is BEH-STATEFUL's minimum).
    examples = session.budget.stateful_examples() if session.budget is not None else (
        4 if session.provision is not None else 3)
    # Only a count: a passing step is an evaluation without a finding, and keeping its exchange
    # (bodies of up to 16 MiB) until the verdict would hold every body of the run in memory.
    passes: Counter[str] = Counter()
    ran: Counter[str] = Counter()
    fixed = _fixed_tasks(session)
    first = next(iter(fixed))
    # An earlier read (a scenario's precondition read) may have shown it already: a round trip saved.
    can_read = session.reads_tasks or (
        read(session, first, f"{RID}: does the target offer GET?").http_status not in NO_GET)
    settles = PendingSettles(session)
    machine = build_machine(session, fixed, can_read, passes, ran, settles)
    seed(session.seed)(machine)
    # The known tasks are the model's alone while it runs: a change the schema phase's requests
    # (side by side) made would otherwise be a model mismatch blamed on BEH-STATEFUL.
    try:
        with session.holding([task_id for task_id, status in fixed.items() if status != UNKNOWN]):
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=examples,
                    stateful_step_count=STEPS,
                    database=None,
                    deadline=None,
                    # No shrinking: it would re-send requests to a server that keeps state.
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                ),
            )
    except BaseException:
        # What the machine raised is what the run hears; the settles still under way end first
        # (no thread of this scenario records after it ended).
        with contextlib.suppress(BaseException):
            settles.resolve()
        raise
    # Every example's pending cancel is judged before the verdict (and the end-of-run re-read).
    settles.resolve()
    session.stateful_rules = {name: ran[name] for name in RULES}
    if not ran["cancel_in_progress"] and not session.recorder.failures_for([RID]):
        session.recorder.not_run(RID, no_task_reason(session) + " (two make the model stronger)")
        return
    missing = [name for name in RULES if not ran[name]]
    if missing:
        session.recorder.not_run(RID, f"the state machine never ran {', '.join(missing)} "
                                 "(pass a task in a non-cancellable status, e.g. --task SUCCESSFUL=<id>, and a "
                                 "target with GET /v1/tasks/{id})")
        return
    skipped = f"; {ran[SKIPPED]} {SKIPPED} (a third identical step in a row)" if ran[SKIPPED] else ""
    session.recorder.remark(RID, "rules ran: " + ", ".join(f"{name} ×{ran[name]}" for name in RULES) + skipped)
    for _ in range(passes["held"]):
        session.recorder.record(RID, [])


def _fixed_tasks(session: SuiteSession) -> dict[str, str]:
    fixed: dict[str, str] = {}
    for status, task_id in session.pool.non_cancellable()[:3]:
        fixed[task_id] = status
    for task_id in unknown_ids(session, 1, RID):
        fixed[task_id] = UNKNOWN
    return fixed

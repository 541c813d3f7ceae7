"""Behavioural requirements: scenarios that drive the target through several requests.

A schema-valid answer can still be wrong: a server that cancels a finished task, answers 200
without changing anything, forgets a cancelled task or lets two racing cancels both win passes
every schema check. Each scenario here is registered like a response check and judged from what
the target answers, reading task status through GET /v1/tasks/{id} where the target offers it.

Safety: a DELETE reaches an IN_PROGRESS task only through `acquire_in_progress`, which hands out
ids the user gave (or allowed), each once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from conformance.model import Exchange, Kind, Profile, Severity, Violation
from conformance.requirements.registry import register
from conformance.tasks import CANCELLABLE, CANCELLED, STATUSES, encode_id, normalise_status

if TYPE_CHECKING:
    from conformance.engine.session import SuiteSession

SEED_RULE = "Task can not be cancelled. Only a IN_PROGRESS task can be cancelled."
NO_IN_PROGRESS = "no IN_PROGRESS task given: pass --task IN_PROGRESS=<id> (it will be cancelled)"
# Statuses a task never leaves on its own; PENDING may legitimately start while the suite runs.
FINAL = frozenset({"SUCCESSFUL", "FAILED", "CANCELLED", "COMPLETED_WITH_WARNING", "SKIPPED"})
# Answers meaning "this target has no GET /v1/tasks/{id}" rather than "this task is gone".
NO_GET = frozenset({405, 501})


F = TypeVar("F", bound=Callable[..., Any])
Plan = Callable[["SuiteSession"], list[str]]


def behavior(requirement_id: str, *, title: str, plan: Plan, seed: str = SEED_RULE,
             source: str = "seed", takes_in_progress: bool = False, beside: bool = False) -> Callable[[F], F]:
    """Register a MUST scenario of the behaviour profile.

    `takes_in_progress`: it takes IN_PROGRESS tasks from the pool; `beside`: it runs in its own
    thread, once the scenarios before it that take IN_PROGRESS tasks have taken theirs.
    """
    return register(requirement_id, severity=Severity.MUST, profile=Profile.BEHAVIOR, kind=Kind.SCENARIO,
                    title=title, seed=seed, source=source, plan=plan, takes_in_progress=takes_in_progress,
                    beside=beside)


def _in_progress_plan(steps: str) -> Plan:
    def plan(session: SuiteSession) -> list[str]:
        given = session.pool.given.get(CANCELLABLE, [])
        if not given and session.provision is None:
            return [f"NOT RUN: {NO_IN_PROGRESS}"]
        target = ", ".join(given[:3]) if given else "a task the reference server creates"
        return [f"{steps} (IN_PROGRESS, handed over: {target})"]

    return plan


def _plan_not_cancellable(session: SuiteSession) -> list[str]:
    tasks = session.pool.non_cancellable()
    if not tasks:
        return ["NOT RUN: no task in a non-cancellable status given"]
    return [f"GET, DELETE (expects 409), GET /v1/tasks/{task_id} ({status})" for status, task_id in tasks]


# -- helpers ----------------------------------------------------------------------------------
def cancel(session: SuiteSession, task_id: str, purpose: str) -> Exchange:
    """DELETE one task; the answer also goes through every response check."""
    exchange = session.target.cancel(encode_id(task_id), purpose=purpose, task_id=task_id)
    session.recorder.check(exchange)
    session.cancels.event(task_id, session.clock(), f"DELETE {status_of(exchange) or exchange.error}")
    return exchange


def status_of(exchange: Exchange) -> int | None:
    return exchange.response.status if exchange.response is not None else None


@dataclass(frozen=True)
class Reading:
    """What GET /v1/tasks/{id} said: the task's canonical status, or why there is none."""

    exchange: Exchange
    status: str | None
    http_status: int | None
    # The Task's isCancellable, when the body carries a boolean one.
    cancellable: bool | None = None

    @property
    def available(self) -> bool:
        return self.http_status == 200 and self.status is not None

    def describe(self) -> str:
        if self.available:
            return str(self.status)
        if self.http_status is None:
            return f"no answer ({self.exchange.error})"
        return f"GET answered {self.http_status}"


def read(session: SuiteSession, task_id: str, purpose: str) -> Reading:
    exchange = session.target.get_task(task_id, purpose=purpose)
    response = exchange.response
    status = None
    cancellable = None
    if response is not None and response.status == 200 and response.json.ok:
        body = response.json.value
        if isinstance(body, dict):
            status = normalise_status(body.get("status"))
            flag = body.get("isCancellable")
            cancellable = flag if isinstance(flag, bool) else None
    reading = Reading(exchange, status, response.status if response is not None else None, cancellable)
    if status is not None:
        session.reads_tasks = True
    session.cancels.event(task_id, session.clock(), f"GET {reading.describe()}")
    if status == CANCELLED:
        session.cancels.read_cancelled.add(task_id)
    return reading


# -- cancellation that may settle asynchronously ------------------------------------------------
# Polling after a 200: 0.1 s, doubling, at most 2 s apart, until CANCELLED or the settle window
# closes. The read count is bounded too, so an injected clock that never advances cannot loop.
SETTLE_FIRST_DELAY = 0.1
SETTLE_MAX_DELAY = 2.0
SETTLE_MAX_READS = 100


@dataclass
class Settling:
    """The reads after a 200 cancel: (seconds since the 200, reading), last one decisive."""

    task_id: str
    readings: list[tuple[float, Reading]]

    @property
    def final(self) -> Reading:
        return self.readings[-1][1]

    @property
    def settled(self) -> bool:
        return self.final.status == CANCELLED

    @property
    def synchronous(self) -> bool:
        return self.settled and len(self.readings) == 1

    @property
    def seconds(self) -> float:
        return self.readings[-1][0]

    def timeline(self) -> str:
        return ", ".join(f"{t:.2f}s {r.describe()}" for t, r in self.readings)


@dataclass
class CancelLedger:
    """What the run learnt about cancellation: settle times, and every task it touched."""

    # (task id, seconds from the 200 to the first CANCELLED read, read CANCELLED on the first read?)
    observations: list[tuple[str, float, bool]] = field(default_factory=list)
    # task id -> (requirement whose request touched it, the status it must keep to the end of the run)
    touched: dict[str, tuple[str, str]] = field(default_factory=dict)
    # task id -> what the run sent and read about it: (clock, event)
    history: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    # Tasks that answered a 200 cancel and then read 404: cancelled, then forgotten.
    gone: list[str] = field(default_factory=list)
    # IN_PROGRESS tasks skipped because they carry isCancellable: false
    uncancellable: list[str] = field(default_factory=list)
    # task id -> {kind of touch: when the run first touched the task that way}. A kind is how the
    # run left a task, as a target sees it: (True, CANCELLED) cancelled by a 200, or (False, status)
    # a cancel refused in that status. The re-read at the end waits until the earliest task of
    # each kind is RECONCILE_DELAY old (see reconcile).
    since: dict[str, dict[tuple[bool, str], float]] = field(default_factory=dict)
    # Tasks read CANCELLED at some point (a cancel that never did, its scenario failed already).
    read_cancelled: set[str] = field(default_factory=set)
    # Refusable tasks whose refusal BEH-NOT-CANCELLABLE judged already (the schema phase's chain or
    # the scenario), with the status code their cancel got: the other party does not send it again.
    refusals: dict[str, int | None] = field(default_factory=dict)

    def track(self, task_id: str, requirement_id: str, keeps: str, now: float, *, cancelled: bool = False) -> None:
        """`requirement_id`'s request left `task_id` in `keeps`: by cancelling it (a 200), or by a refusal."""
        # The last request that touched a task owns it: a change seen at the end of the run came
        # after that request (e.g. BEH-RECANCEL's refused re-cancel of BEH-CANCEL's task).
        self.touched[task_id] = (requirement_id, keeps)
        self.since.setdefault(task_id, {}).setdefault((cancelled, keeps), now)
        self.history.setdefault(task_id, [])

    def event(self, task_id: str, now: float, text: str) -> None:
        if task_id in self.history:
            self.history[task_id].append((now, text))

    def timeline(self, task_id: str, origin: float) -> str:
        return ", ".join(f"{t - origin:.2f}s {e}" for t, e in self.history.get(task_id, []))

    def mode(self) -> dict[str, Any]:
        """{"mode": "synchronous"|"asynchronous"|None, "settle_seconds": float|None}."""
        if not self.observations:
            return {"mode": None, "settle_seconds": None}
        if all(sync for _, _, sync in self.observations):
            return {"mode": "synchronous", "settle_seconds": None}
        return {"mode": "asynchronous", "settle_seconds": round(max(s for _, s, _ in self.observations), 3)}

    @property
    def asynchronous(self) -> bool:
        return self.mode()["mode"] == "asynchronous"

    def asynchronous_among(self, task_ids: Iterable[str]) -> bool:
        """Whether one of these tasks' cancels settled later than the first read after the 200."""
        ids = set(task_ids)
        return any(not sync for task_id, _, sync in list(self.observations) if task_id in ids)


def await_cancelled(session: SuiteSession, task_id: str, purpose: str, *, since: float,
                    first: Reading | None = None) -> Settling:
    """Read the task (with backoff) until it reads CANCELLED, another status than IN_PROGRESS, no
    status at all, or `session.settle_timeout` seconds after `since` (the 200) have passed."""
    readings: list[tuple[float, Reading]] = []
    if first is not None:
        readings.append((session.clock() - since, first))
    delay = SETTLE_FIRST_DELAY
    while len(readings) < SETTLE_MAX_READS:
        if readings:
            if readings[-1][1].status != CANCELLABLE:
                break
            elapsed = session.clock() - since
            if elapsed >= session.settle_timeout:
                break
            session.sleep(min(delay, session.settle_timeout - elapsed))
            delay = min(delay * 2, SETTLE_MAX_DELAY)
        readings.append((session.clock() - since, read(session, task_id, purpose)))
    settling = Settling(task_id, readings)
    if settling.settled:
        session.cancels.observations.append((task_id, settling.seconds, settling.synchronous))
    elif settling.final.http_status == 404:
        session.cancels.gone.append(task_id)
    return settling


class PendingSettles:
    """Cancels whose settle windows are waited out side by side, each in a thread of its own.

    A cancel answered 200 that still reads IN_PROGRESS costs up to a settle window of waiting
    and a few reads. Waited out one after another (each state-machine example ending on a pending
    cancel), a target whose cancels settle in 3 s cost 3 s per example; handed over here, every
    window runs beside the work that follows, and `resolve()` waits for the last one. Each is
    `await_cancelled` as before, from the 200 on (the same reads, the same timeline), and
    `judge(settling)` gives its verdict in that thread.
    """

    def __init__(self, session: SuiteSession) -> None:
        self._session = session
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()

    def add(self, task_id: str, purpose: str, since: float, judge: Callable[[Settling], None]) -> None:
        session = self._session
        # A scenario's reads keep their priority over the schema phase's probes in the new thread.
        urgent = session.target.is_urgent()

        def settle() -> None:
            if urgent:
                session.target.urgent()
            try:
                judge(await_cancelled(session, task_id, purpose, since=since))
            except BaseException as exc:  # re-raised by resolve(), in the scenario's thread
                with self._lock:
                    self._errors.append(exc)

        thread = threading.Thread(target=settle, name=f"sddc-settle-{task_id[:8]}", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def resolve(self) -> None:
        """Wait until every settle handed over was judged; re-raise the first thing one raised
        (a spent budget, a target that stopped answering, an interrupt)."""
        while True:
            with self._lock:
                threads, self._threads = self._threads, []
            if not threads:
                break
            for thread in threads:
                thread.join()
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]


def settle_violation(settling: Settling, settle_timeout: float) -> Violation:
    final = settling.final
    if final.status == CANCELLABLE:
        why = f"reads IN_PROGRESS, not CANCELLED, when the {settle_timeout:g} s settle window closed"
    else:
        why = f"ended as {final.describe()}, not CANCELLED"
    return Violation(f"after a 200 cancel, task {settling.task_id} {why} (reads: {settling.timeline()})")


def judge_uncancellable(session: SuiteSession, task_id: str, before: Reading, purpose: str) -> None:
    """An IN_PROGRESS task that says isCancellable: false must refuse a cancel (409) and keep its status."""
    rid = "BEH-NOT-CANCELLABLE"
    session.cancels.track(task_id, rid, CANCELLABLE, session.clock())
    exchange = cancel(session, task_id, f"{purpose}: cancel an IN_PROGRESS task with isCancellable false")
    violations = []
    if status_of(exchange) != 409:
        violations.append(Violation(f"cancelling IN_PROGRESS task {task_id}, which says isCancellable false, "
                                    f"answered {status_of(exchange) or exchange.error}, not 409"))
    after = read(session, task_id, f"{purpose}: read after a refused cancel (isCancellable false)")
    if after.status == CANCELLED:
        violations.append(Violation(f"task {task_id} (isCancellable false) reads CANCELLED after the cancel"))
    elif before.available and after.http_status == 404:
        violations.append(Violation(f"task {task_id} (isCancellable false) is gone after the cancel"))
    session.recorder.record(rid, violations, exchange)


def acquire_in_progress(session: SuiteSession, purpose: str) -> tuple[str, Reading | None] | None:
    """An IN_PROGRESS task this run may cancel, confirmed IN_PROGRESS (and not isCancellable false)
    where GET allows."""
    got = acquire_several(session, 1, purpose)
    return got[0] if got else None


def acquire_several(session: SuiteSession, count: int, purpose: str) -> list[tuple[str, Reading | None]]:
    """Up to `count` tasks as `acquire_in_progress` gives them: taken from the pool in its order,
    their precondition reads side by side (they are independent), judged in that order."""
    got: list[tuple[str, Reading | None]] = []
    taken = 0
    while len(got) < count and taken < MAX_ACQUIRE:
        batch: list[str] = []
        while len(got) + len(batch) < count and taken < MAX_ACQUIRE:
            task_id = session.pool.take_in_progress()
            if task_id is None and session.provision is not None:
                task_id = session.provision.create_tasks(CANCELLABLE, 1)[0]
            if task_id is None:
                break
            taken += 1
            batch.append(task_id)
        if not batch:
            break
        readings = session.side_by_side(batch, lambda task_id: read(session, task_id, f"{purpose}: precondition"))
        for task_id, before in zip(batch, readings, strict=True):
            if _usable(session, task_id, before, purpose):
                got.append((task_id, before if before.available else None))
    return got


def _usable(session: SuiteSession, task_id: str, before: Reading, purpose: str) -> bool:
    if before.available and before.status != CANCELLABLE:
        # It finished (or something cancelled it) since it was handed over: never sent a DELETE.
        session.note(f"task {task_id} was handed over as IN_PROGRESS but reads {before.status}; not used")
        return False
    if before.available and before.cancellable is False:
        # Safe to send: the server must refuse it. Judged, then another task is taken.
        session.cancels.uncancellable.append(task_id)
        judge_uncancellable(session, task_id, before, purpose)
        return False
    return True


MAX_ACQUIRE = 50


def no_task_reason(session: SuiteSession) -> str:
    if session.cancels.uncancellable:
        return ("every IN_PROGRESS task given is isCancellable:false; pass --task IN_PROGRESS=<id> of a "
                "cancellable task")
    return NO_IN_PROGRESS


def finished_on_its_own(session: SuiteSession, task_id: str, purpose: str) -> bool:
    """After a refused cancel of a task read IN_PROGRESS: did the task simply finish meanwhile?"""
    after = read(session, task_id, purpose)
    if after.available and after.status in FINAL - {CANCELLED}:
        session.note(f"task {task_id} finished ({after.status}) between its precondition read and the cancel; "
                     "another task was used")
        return True
    return False


def unknown_ids(session: SuiteSession, count: int, requirement_id: str) -> Iterator[str]:
    known = session.pool.known_ids()
    rng = session.random_for(requirement_id)
    produced = 0
    while produced < count:
        # Drawn from the run's seed (and the scenario's id), so the same seed sends the same ids.
        candidate = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if candidate not in known:
            produced += 1
            yield candidate


# -- scenarios --------------------------------------------------------------------------------
@behavior("BEH-CANCEL", title="Cancelling an IN_PROGRESS task answers 200 and the task then reads as cancelled",
          seed="Cancel a Task by ID, if it exists. 200: Task was cancelled successfully.",
          plan=_in_progress_plan("GET, DELETE (expects 200), GET until CANCELLED or the settle window closes"),
          takes_in_progress=True)
def cancel_in_progress(session: SuiteSession) -> None:
    rid = "BEH-CANCEL"
    for _ in range(MAX_ACQUIRE):
        acquired = acquire_in_progress(session, rid)
        if acquired is None:
            session.recorder.not_run(rid, no_task_reason(session))
            return
        task_id, before = acquired
        exchange = cancel(session, task_id, f"{rid}: cancel an IN_PROGRESS task")
        sent = session.clock()
        if status_of(exchange) == 409 and finished_on_its_own(session, task_id, f"{rid}: read after a 409"):
            continue
        if status_of(exchange) != 200:
            session.recorder.record(rid, [Violation(f"cancelling IN_PROGRESS task {task_id} answered "
                                                    f"{status_of(exchange) or exchange.error}, not 200")], exchange)
            return
        session.cancelled_by_suite.append(task_id)
        # It takes no other task: the next scenario may take its own while this one waits.
        session.taken(rid)
        session.cancels.track(task_id, rid, CANCELLED, sent, cancelled=True)
        settling = await_cancelled(session, task_id, f"{rid}: read after cancel", since=sent)
        if before is None and not settling.final.available:
            session.recorder.not_run(rid, "the cancel answered 200, but the target has no GET /v1/tasks/{id} "
                                     f"({settling.final.describe()}) to show its effect")
            return
        if not settling.settled:
            session.recorder.record(rid, [settle_violation(settling, session.settle_timeout)],
                                    settling.final.exchange)
            return
        session.recorder.record(rid, [], exchange)
        return


@behavior("BEH-RECANCEL", title="A cancelled task stays cancelled: cancelling it again answers 409",
          plan=_in_progress_plan("DELETE again (expects 409), GET the task BEH-CANCEL cancelled once it reads "
                                 "CANCELLED"),
          takes_in_progress=True)
def recancel(session: SuiteSession) -> None:
    rid = "BEH-RECANCEL"
    if session.cancelled_by_suite:
        # BEH-CANCEL's task, cancelled with 200: this scenario takes none of its own, so the next
        # may take theirs while BEH-CANCEL waits for the cancel to settle, and this one with it.
        task_id = session.cancelled_by_suite[0]
        session.taken(rid)
        session.after_scenario("BEH-CANCEL")
        # It read CANCELLED, or 404 afterwards (it must still be there: the cancel again is
        # decisive either way).
        if task_id not in {t for t, _, _ in session.cancels.observations} and task_id not in session.cancels.gone:
            session.recorder.not_run(rid, f"task {task_id}, cancelled with 200, never read CANCELLED "
                                     "(see BEH-CANCEL)")
            return
    else:
        acquired = acquire_in_progress(session, rid)
        if acquired is None:
            session.recorder.not_run(rid, no_task_reason(session))
            return
        task_id = acquired[0]
        first = cancel(session, task_id, f"{rid}: first cancel")
        sent = session.clock()
        if status_of(first) != 200:
            session.recorder.not_run(rid, f"the first cancel of {task_id} answered {status_of(first)}, not 200")
            return
        session.cancelled_by_suite.append(task_id)
        session.taken(rid)
        session.cancels.track(task_id, rid, CANCELLED, sent, cancelled=True)
        pending = read(session, task_id, f"{rid}: read after the first cancel")
        if pending.status == CANCELLABLE:
            # Still pending: the same request again (200) or a refusal (409) are both right.
            repeat = cancel(session, task_id, f"{rid}: cancel again while the cancellation is pending")
            if status_of(repeat) not in (200, 409):
                session.recorder.record(rid, [Violation(
                    f"a repeat cancel of {task_id} while its cancellation was pending answered "
                    f"{status_of(repeat) or repeat.error}, not 200 or 409")], repeat)
                return
        settling = await_cancelled(session, task_id, f"{rid}: wait for the cancel to settle", since=sent,
                                   first=pending)
        if not settling.settled:
            session.recorder.not_run(rid, f"task {task_id}, cancelled with 200, never read CANCELLED "
                                     f"(reads: {settling.timeline()})")
            return
    session.cancels.track(task_id, rid, CANCELLED, session.clock())
    again = cancel(session, task_id, f"{rid}: cancel the cancelled task again")
    violations = []
    if status_of(again) != 409:
        violations.append(Violation(f"cancelling task {task_id}, which already reads CANCELLED, answered "
                                    f"{status_of(again) or again.error}, not 409"))
    after = read(session, task_id, f"{rid}: read after second cancel")
    if after.http_status is not None and after.http_status not in (200, 405, 501):
        violations.append(Violation(f"cancelled task {task_id} is gone: {after.describe()}"))
    elif after.available and after.status != CANCELLED:
        violations.append(Violation(f"cancelled task {task_id} now reads {after.status}"))
    session.recorder.record(rid, violations, again if violations and status_of(again) != 409 else after.exchange)


@behavior("BEH-NOT-CANCELLABLE",
          title="Cancelling a task in any other status answers 409 and leaves its status unchanged",
          plan=_plan_not_cancellable)
def not_cancellable(session: SuiteSession) -> None:
    rid = "BEH-NOT-CANCELLABLE"
    tasks = session.pool.non_cancellable()
    if not tasks:
        if session.cancels.uncancellable:
            session.recorder.remark(rid, "judged only on IN_PROGRESS tasks with isCancellable false")
            return
        session.recorder.not_run(rid, "no task in a non-cancellable status given: pass --task SUCCESSFUL=<id> "
                                 "(or PENDING, FAILED, CANCELLED, ...) or --discover")
        return
    covered: set[str] = set()

    def one(task: tuple[str, str]) -> None:
        # Its read-cancel-read is this scenario's alone (the schema phase runs side by side).
        with session.holding([task[1]]):
            judge(task)

    def judge(task: tuple[str, str]) -> None:
        given_status, task_id = task
        if task_id in session.schema_judges_refusals:
            # The schema phase's chain judges this task's refusal (DELETE, then GET): the same
            # evidence again would spend three requests and decide nothing.
            covered.add(given_status)
            return
        before = read(session, task_id, f"{rid}: precondition")
        status = str(before.status) if before.available else given_status
        if status == CANCELLABLE:
            session.note(f"task {task_id} was given as {given_status} but reads IN_PROGRESS; not cancelled")
            return
        if before.available:
            session.cancels.track(task_id, rid, status, session.clock())
        exchange = cancel(session, task_id, f"{rid}: cancel a {status} task")
        session.cancels.refusals[task_id] = status_of(exchange)
        violations = []
        if status_of(exchange) != 409:
            violations.append(Violation(f"cancelling {status} task {task_id} answered "
                                        f"{status_of(exchange) or exchange.error}, not 409"))
        after = read(session, task_id, f"{rid}: read after refused cancel")
        if before.available and after.available and not unchanged(status, str(after.status)):
            violations.append(Violation(f"{status} task {task_id} reads {after.status} after the cancel"))
        elif before.available and not after.available:
            violations.append(Violation(f"{status} task {task_id} is gone after the cancel: {after.describe()}"))
        covered.add(status)
        session.recorder.record(rid, violations, exchange)

    # Each task's read-cancel-read stays in order; different tasks are independent.
    session.side_by_side(tasks, one)
    missing = [s for s in STATUSES if s != CANCELLABLE and s not in covered]
    if missing:
        session.recorder.remark(rid, f"not exercised for {', '.join(missing)} (no such task given)")


def judge_known_refusal(session: SuiteSession, given_status: str, task_id: str, exchange: Exchange) -> str | None:
    """A known task in a non-cancellable status, cancelled during the schema phase: judged here.

    The schema phase reaches every such task first; if its cancel were not judged on the spot, a
    target that wrongly cancels it (or changes it on a 409) would leave the BEH-NOT-CANCELLABLE
    scenario only a task that already reads CANCELLED, which then rightly refuses again.
    """
    rid = "BEH-NOT-CANCELLABLE"
    code = status_of(exchange)
    if code is None:
        return None  # no answer: SRV-ANSWERS judges that
    # Re-read at the end of the run like the scenario's own refusals. Being the run's first
    # refusals of each status, they start the end-of-run re-read's clock early (see reconcile).
    session.cancels.track(task_id, rid, given_status, session.clock())
    session.cancels.refusals[task_id] = code
    violations = []
    if code != 409:
        violations.append(Violation(f"cancelling {given_status} task {task_id} answered {code}, not 409"))
    after = read(session, task_id, f"{rid}: read after the schema phase's cancel")
    if after.available and not unchanged(given_status, str(after.status)):
        violations.append(Violation(f"{given_status} task {task_id} reads {after.status} after the cancel"))
    elif after.http_status == 404:
        violations.append(Violation(f"{given_status} task {task_id} is gone after the cancel: {after.describe()}"))
    session.recorder.record(rid, violations, exchange)
    # What the task reads now (None: no status read), the baseline for the requests that follow.
    return after.status


def unchanged(before: str, after: str) -> bool:
    # A PENDING task may start on its own and an IN_PROGRESS one finish; neither may end up cancelled.
    if after == before:
        return True
    if before == "PENDING":
        return after == CANCELLABLE or after in FINAL - {CANCELLED}
    return before == CANCELLABLE and after in FINAL - {CANCELLED}


@behavior("BEH-UNKNOWN-404", title="An id that names no task answers 404, never 409 or 2xx",
          seed="Cancel a Task by ID, if it exists. 404: Task not found",
          plan=lambda s: ["DELETE /v1/tasks/<random UUID> × 3, never a known task's id"])
def unknown_id(session: SuiteSession) -> None:
    rid = "BEH-UNKNOWN-404"
    for task_id in unknown_ids(session, 3, rid):
        exchange = cancel(session, task_id, f"{rid}: cancel an id that names no task")
        code = status_of(exchange)
        violations = [] if code == 404 else [
            Violation(f"cancelling unknown id {task_id} answered {code or exchange.error}, not 404")]
        session.recorder.record(rid, violations, exchange)


def judge_generated(session: SuiteSession, exchange: Exchange) -> None:
    """A generated (unknown) id must never be answered 409 or 2xx: the fuzzing half of BEH-UNKNOWN-404."""
    code = status_of(exchange)
    if code is None:
        return
    violations = []
    if code == 409 or 200 <= code < 300:
        violations.append(Violation(f"unknown id {exchange.task_id!r} answered {code}; an id that names no "
                                    "task must answer 404"))
    session.recorder.record("BEH-UNKNOWN-404", violations, exchange)


@behavior("BEH-RACE", title="Concurrent cancels of one IN_PROGRESS task: one 200 wins, the rest answer 409 "
          "(or 200 while an asynchronous cancel is pending)",
          plan=lambda s: _in_progress_plan(f"{s.options.concurrency} concurrent DELETEs, then GET of one task "
                                           "until it reads CANCELLED")(s),
          takes_in_progress=True)
def racing_cancels(session: SuiteSession) -> None:
    rid = "BEH-RACE"
    # A race needs at least two cancels, whatever --concurrency allows the stateless probes.
    n = max(2, session.options.concurrency)
    for _ in range(MAX_ACQUIRE):
        acquired = acquire_in_progress(session, rid)
        if acquired is None:
            session.recorder.not_run(rid, no_task_reason(session))
            return
        task_id = acquired[0]
        exchanges = session.target.run_concurrently(
            [partial(cancel, session, task_id, f"{rid}: concurrent cancel {i + 1}/{n}") for i in range(n)]
        )
        sent = session.clock()
        codes = sorted(status_of(e) or 0 for e in exchanges)
        # Read right away: CANCELLED now means the cancel took effect synchronously, so every
        # 200 after the first one cancelled an already cancelled task.
        after = read(session, task_id, f"{rid}: read right after the race")
        if not any(200 <= c < 300 for c in codes) and after.available and after.status in FINAL - {CANCELLED}:
            session.note(f"task {task_id} finished ({after.status}) while it was raced; another task was used")
            continue
        break
    else:
        session.recorder.not_run(rid, no_task_reason(session))
        return
    # The tasks BEH-CANCEL and BEH-RECANCEL cancelled: the cancel mode they show judges the race.
    earlier = list(session.cancelled_by_suite)
    session.cancelled_by_suite.append(task_id)
    session.taken(rid)
    session.cancels.track(task_id, rid, CANCELLED, sent, cancelled=True)
    settling = await_cancelled(session, task_id, f"{rid}: wait for the race's cancel to settle", since=sent,
                               first=after)
    # Their settle windows ran beside this one's; the verdict needs what they saw.
    session.after_scenario("BEH-CANCEL")
    session.after_scenario("BEH-RECANCEL")
    violations = judge_race(codes, n, task_id, pending=after.status == CANCELLABLE,
                            asynchronous=session.cancels.asynchronous_among(earlier))
    if (settling.final.available or after.available) and not settling.settled:
        violations.append(settle_violation(settling, session.settle_timeout))
    evidence = next((e for e in exchanges if status_of(e) not in (200, 409)), None) or next(
        (e for e in exchanges if 200 <= (status_of(e) or 0) < 300), exchanges[0])
    session.recorder.record(rid, violations, evidence)


def judge_race(codes: list[int], n: int, task_id: str, *, pending: bool, asynchronous: bool) -> list[Violation]:
    """The answers of n racing cancels of one IN_PROGRESS task (0 = no answer).

    Losers answer 409; a further 200 is right only where the target cancels asynchronously (the
    task still read IN_PROGRESS right after the race, or the run saw its cancels settle later).
    """
    # Any 2xx won: which success code a target uses is SCH-STATUS's (and BEH-CANCEL's) to judge,
    # not the race's, so a 204 winner is one fault with one finding.
    winners = sum(1 for c in codes if 200 <= c < 300)
    others = sorted({c for c in codes if not 200 <= c < 300 and c != 409})
    violations = []
    if winners == 0:
        violations.append(Violation(f"{n} concurrent cancels of {task_id} answered {codes}: none answered 200, "
                                    "so no cancel won"))
    if others:
        violations.append(Violation(f"{n} concurrent cancels of {task_id} answered {codes}: losers must answer "
                                    f"409, not {', '.join(str(c) if c else 'no answer' for c in others)}"))
    if winners > 1 and not (pending or asynchronous):
        violations.append(Violation(f"{n} concurrent cancels of {task_id} answered {codes}: a loser answered "
                                    f"200, not 409 ({winners} winners), but the target cancels synchronously "
                                    "(the task read CANCELLED right after the race), so only one may win"))
    return violations


def reconcile(session: SuiteSession) -> None:
    """Re-read every task the run touched: cancelled ones must still read CANCELLED, refused ones
    their status before the refusal. A change fails the requirement whose request touched the task."""
    ledger = session.cancels
    if not ledger.touched:
        return
    # A task the run cancelled that never read CANCELLED: its scenario failed it already.
    due = [(task_id, rid, keeps) for task_id, (rid, keeps) in list(ledger.touched.items())
           if task_id in ledger.read_cancelled or (True, CANCELLED) not in ledger.since.get(task_id, {})]
    # A change that trails the answer (a cancelled task turning FAILED a moment later) shows only
    # if the task is read some time after it was touched. Every task is read at the end of the run,
    # as late as the run allows, and the run waits only until each kind of touch has had `delay`,
    # measured from its *earliest* task. A kind is what a target can tell apart: a task cancelled
    # by a 200, or a cancel refused in a given status. Which requirement sent the request, or
    # whether it was the state machine's first cancel or its last, it cannot tell; so the earliest
    # task of a kind shows what the later ones would, and no run ends with a fixed sleep after its
    # last cancel. A task counts for every kind of touch it had (BEH-CANCEL's task, refused again
    # by BEH-RECANCEL, shows both when it is re-read).
    earliest: dict[tuple[bool, str], float] = {}
    for task_id, _, _ in due:
        for kind, at in ledger.since.get(task_id, {}).items():
            earliest[kind] = min(at, earliest.get(kind, at))
    delay = min(RECONCILE_DELAY, session.settle_timeout)
    wait = max(earliest.values(), default=0.0) + delay - session.clock()
    if wait > 0:
        session.sleep(wait)

    def one(item: tuple[str, str, str]) -> None:
        task_id, rid, keeps = item
        # Not in the middle of the schema phase's near-miss chain on the same task.
        with session.holding([task_id]):
            reading = read(session, task_id, f"{rid}: end-of-run re-read")
        if reading.http_status is None or reading.http_status in NO_GET:
            return
        if reading.available and (unchanged(keeps, str(reading.status))):
            return
        origin = session.started_monotonic
        session.recorder.record(rid, [Violation(
            f"task {task_id}, left {keeps} by this run, reads {reading.describe()} at the end of the run "
            f"(timeline: {ledger.timeline(task_id, origin)})")], reading.exchange)

    # Independent re-reads: side by side.
    session.side_by_side(due, one)


RECONCILE_DELAY = 2.0


@behavior("AUTH-REQUIRED", title="A cancel without a valid token is rejected (401/403) and cancels nothing",
          seed="Cancel a Task by ID, if it exists",
          source="docs/SOURCES.md#authentication: SDDC Manager requires a bearer token from POST /v1/tokens; "
          "missing or bad tokens get 401",
          plan=lambda s: ["DELETE /v1/tasks/<random UUID> without a token, and with a forged one"
                          if s.target.config.has_credentials else "NOT RUN: the run has no credentials"])
def auth_required(session: SuiteSession) -> None:
    rid = "AUTH-REQUIRED"
    if not session.target.config.has_credentials:
        session.recorder.not_run(rid, "the run has no credentials (no --token or --username), so it cannot tell "
                                 "an open target from one that ignores tokens")
        return
    # Unknown ids only: if the target ignores auth, nothing real gets cancelled by this probe.
    probes = [("no Authorization header", dict(auth=False)),
              ("a forged bearer token", dict(token=f"forged-{session.random_for(rid).getrandbits(64):016x}"))]
    for (label, kwargs), task_id in zip(probes, unknown_ids(session, len(probes), rid), strict=True):
        exchange = session.target.cancel(encode_id(task_id), purpose=f"{rid}: cancel with {label}",
                                         task_id=task_id, **kwargs)  # type: ignore[arg-type]
        code = status_of(exchange)
        violations = [] if code in (401, 403) else [
            Violation(f"a cancel with {label} answered {code or exchange.error}, not 401/403: "
                      "the target does not check credentials")]
        session.recorder.record(rid, violations, exchange)

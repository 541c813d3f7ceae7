"""Behavioural requirements: scenarios that drive the target through several requests.

A schema-valid answer can still be wrong: a server that cancels a finished task, answers 200
without changing anything, forgets a cancelled task or lets two racing cancels both win passes
every schema check. Each scenario here is registered like a response check and judged from what
the target answers, reading task status through GET /v1/tasks/{id} where the target offers it.

Safety: a DELETE reaches an IN_PROGRESS task only through `acquire_in_progress`, which hands out
ids the user gave (or allowed), each once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
NO_GET = frozenset({404, 405, 501})


F = TypeVar("F", bound=Callable[..., Any])
Plan = Callable[["SuiteSession"], list[str]]


def behavior(requirement_id: str, *, title: str, plan: Plan, seed: str = SEED_RULE,
             source: str = "seed") -> Callable[[F], F]:
    """Register a MUST scenario of the behaviour profile."""
    return register(requirement_id, severity=Severity.MUST, profile=Profile.BEHAVIOR, kind=Kind.SCENARIO,
                    title=title, seed=seed, source=source, plan=plan)


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
    return exchange


def status_of(exchange: Exchange) -> int | None:
    return exchange.response.status if exchange.response is not None else None


@dataclass(frozen=True)
class Reading:
    """What GET /v1/tasks/{id} said: the task's canonical status, or why there is none."""

    exchange: Exchange
    status: str | None
    http_status: int | None

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
    if response is not None and response.status == 200 and response.json.ok:
        body = response.json.value
        status = normalise_status(body.get("status")) if isinstance(body, dict) else None
    return Reading(exchange, status, response.status if response is not None else None)


def acquire_in_progress(session: SuiteSession, purpose: str) -> tuple[str, Reading | None] | None:
    """An IN_PROGRESS task this run may cancel, confirmed IN_PROGRESS where GET allows."""
    while True:
        task_id = session.pool.take_in_progress()
        if task_id is None and session.provision is not None:
            task_id = session.provision.create_tasks(CANCELLABLE, 1)[0]
        if task_id is None:
            return None
        before = read(session, task_id, f"{purpose}: precondition")
        if before.available and before.status != CANCELLABLE:
            # It finished (or something cancelled it) since it was handed over: not this run's to judge.
            session.note(f"task {task_id} was handed over as IN_PROGRESS but reads {before.status}; not used")
            continue
        return task_id, before if before.available else None


def unknown_ids(session: SuiteSession, count: int) -> Iterator[str]:
    known = session.pool.known_ids()
    produced = 0
    while produced < count:
        # Drawn from the run's seed, so the same seed sends the same ids.
        candidate = str(uuid.UUID(int=session.rng.getrandbits(128), version=4))
        if candidate not in known:
            produced += 1
            yield candidate


# -- scenarios --------------------------------------------------------------------------------
@behavior("BEH-CANCEL", title="Cancelling an IN_PROGRESS task answers 200 and the task then reads as cancelled",
          seed="Cancel a Task by ID, if it exists. 200: Task was cancelled successfully.",
          plan=_in_progress_plan("GET, DELETE (expects 200), GET one task"))
def cancel_in_progress(session: SuiteSession) -> None:
    rid = "BEH-CANCEL"
    acquired = acquire_in_progress(session, rid)
    if acquired is None:
        session.recorder.not_run(rid, NO_IN_PROGRESS)
        return
    task_id, before = acquired
    exchange = cancel(session, task_id, f"{rid}: cancel an IN_PROGRESS task")
    if status_of(exchange) != 200:
        session.recorder.record(rid, [Violation(f"cancelling IN_PROGRESS task {task_id} answered "
                                                f"{status_of(exchange) or exchange.error}, not 200")], exchange)
        return
    session.cancelled_by_suite.append(task_id)
    after = read(session, task_id, f"{rid}: read after cancel")
    if before is None and not after.available:
        session.recorder.not_run(rid, "the cancel answered 200, but the target has no GET /v1/tasks/{id} "
                                 f"({after.describe()}) to show its effect")
        return
    if after.status != CANCELLED:
        session.recorder.record(rid, [Violation(f"after a 200 cancel, task {task_id} reads {after.describe()}, "
                                                "not CANCELLED")], after.exchange)
        return
    session.recorder.record(rid, [], exchange)


@behavior("BEH-RECANCEL", title="A cancelled task stays cancelled: cancelling it again answers 409",
          plan=_in_progress_plan("DELETE again (expects 409), GET the task BEH-CANCEL cancelled"))
def recancel(session: SuiteSession) -> None:
    rid = "BEH-RECANCEL"
    if session.cancelled_by_suite:
        task_id = session.cancelled_by_suite[0]
    else:
        acquired = acquire_in_progress(session, rid)
        if acquired is None:
            session.recorder.not_run(rid, NO_IN_PROGRESS)
            return
        task_id = acquired[0]
        first = cancel(session, task_id, f"{rid}: first cancel")
        if status_of(first) != 200:
            session.recorder.not_run(rid, f"the first cancel of {task_id} answered {status_of(first)}, not 200")
            return
        session.cancelled_by_suite.append(task_id)
    again = cancel(session, task_id, f"{rid}: cancel the cancelled task again")
    violations = []
    if status_of(again) != 409:
        violations.append(Violation(f"cancelling cancelled task {task_id} again answered "
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
        session.recorder.not_run(rid, "no task in a non-cancellable status given: pass --task SUCCESSFUL=<id> "
                                 "(or PENDING, FAILED, CANCELLED, ...) or --discover")
        return
    covered: set[str] = set()
    for given_status, task_id in tasks:
        before = read(session, task_id, f"{rid}: precondition")
        status = str(before.status) if before.available else given_status
        if status == CANCELLABLE:
            session.note(f"task {task_id} was given as {given_status} but reads IN_PROGRESS; not cancelled")
            continue
        exchange = cancel(session, task_id, f"{rid}: cancel a {status} task")
        violations = []
        if status_of(exchange) != 409:
            violations.append(Violation(f"cancelling {status} task {task_id} answered "
                                        f"{status_of(exchange) or exchange.error}, not 409"))
        after = read(session, task_id, f"{rid}: read after refused cancel")
        if before.available and after.available and not _unchanged(status, str(after.status)):
            violations.append(Violation(f"{status} task {task_id} reads {after.status} after the cancel"))
        elif before.available and not after.available:
            violations.append(Violation(f"{status} task {task_id} is gone after the cancel: {after.describe()}"))
        covered.add(status)
        session.recorder.record(rid, violations, exchange)
    missing = [s for s in STATUSES if s != CANCELLABLE and s not in covered]
    if missing:
        session.recorder.remark(rid, f"not exercised for {', '.join(missing)} (no such task given)")


def _unchanged(before: str, after: str) -> bool:
    # A PENDING task may start on its own; it must not end up cancelled.
    return after == before or (before == "PENDING" and after == CANCELLABLE)


@behavior("BEH-UNKNOWN-404", title="An id that names no task answers 404, never 409 or 2xx",
          seed="Cancel a Task by ID, if it exists. 404: Task not found",
          plan=lambda s: ["DELETE /v1/tasks/<random UUID> × 3, never a known task's id"])
def unknown_id(session: SuiteSession) -> None:
    rid = "BEH-UNKNOWN-404"
    for task_id in unknown_ids(session, 3):
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


@behavior("BEH-RACE", title="Concurrent cancels of one IN_PROGRESS task: exactly one 200, the rest 409",
          plan=lambda s: _in_progress_plan(f"{s.options.concurrency} concurrent DELETEs, then GET of one task")(s))
def racing_cancels(session: SuiteSession) -> None:
    rid = "BEH-RACE"
    acquired = acquire_in_progress(session, rid)
    if acquired is None:
        session.recorder.not_run(rid, NO_IN_PROGRESS)
        return
    task_id = acquired[0]
    n = session.options.concurrency
    exchanges = session.target.run_concurrently(
        [partial(cancel, session, task_id, f"{rid}: concurrent cancel {i + 1}/{n}") for i in range(n)]
    )
    session.cancelled_by_suite.append(task_id)
    codes = sorted(status_of(e) or 0 for e in exchanges)
    winners = codes.count(200)
    violations = []
    if winners != 1 or codes.count(409) != n - 1:
        violations.append(Violation(f"{n} concurrent cancels of {task_id} answered {codes}: expected one 200 "
                                    f"and {n - 1} × 409, got {winners} winner(s)"))
    after = read(session, task_id, f"{rid}: read after the race")
    if after.available and after.status != CANCELLED:
        violations.append(Violation(f"after the race task {task_id} reads {after.status}, not CANCELLED"))
    evidence = next((e for e in exchanges if status_of(e) == 200 and winners > 1), exchanges[0])
    session.recorder.record(rid, violations, evidence)


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
              ("a forged bearer token", dict(token=f"forged-{session.rng.getrandbits(64):016x}"))]
    for (label, kwargs), task_id in zip(probes, unknown_ids(session, len(probes)), strict=True):
        exchange = session.target.cancel(encode_id(task_id), purpose=f"{rid}: cancel with {label}",
                                         task_id=task_id, **kwargs)  # type: ignore[arg-type]
        code = status_of(exchange)
        violations = [] if code in (401, 403) else [
            Violation(f"a cancel with {label} answered {code or exchange.error}, not 401/403: "
                      "the target does not check credentials")]
        session.recorder.record(rid, violations, exchange)

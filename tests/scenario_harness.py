"""Run ONE behaviour scenario in isolation: against the embedded reference server (with a chosen
set of defects, sharing an injected clock with the session) or against a scripted in-process
target. No pytest run of the suite, no preflight: a session costs a few task creations.

Used by tests/test_scenario_units.py and tests/test_stateful_units.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conformance.engine.recorder import Recorder
from conformance.engine.session import SuiteSession
from conformance.engine.target import Target, TargetConfig
from conformance.model import Exchange, Outcome, Profile, RecordedRequest, RecordedResponse
from conformance.options import RunOptions
from conformance.outcome import RequirementResult
from conformance.reference import ReferenceConfig, ReferenceServer
from conformance.tasks import TaskPool


@dataclass
class FakeClock:
    """Monotonic seconds that only move when something sleeps (or a test advances them)."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def new_session(target: Any, given: dict[str, list[str]], *, clock: FakeClock, provision: Any = None,
                settle_timeout: float = 5.0, concurrency: int = 4, seed: int = 1) -> SuiteSession:
    return SuiteSession(
        options=RunOptions(seed=seed, profile=Profile.BEHAVIOR, concurrency=concurrency),
        target=target,
        recorder=Recorder(),
        pool=TaskPool.from_mapping(given),
        seed=seed,
        embedded=provision is not None,
        provision=provision,
        settle_timeout=settle_timeout,
        clock=clock,
        sleep=clock.sleep,
    )


class Reference:
    """One embedded reference server with `defects`; its delayed changes run on `self.clock`."""

    def __init__(self, defects: Iterable[str] = (), **config: Any) -> None:
        self.clock = FakeClock()
        self.server = ReferenceServer(ReferenceConfig(defects=frozenset(defects), **config),
                                      clock=self.clock).start()
        self.target = Target(TargetConfig(base_url=self.server.base_url, username=self.server.config.username,
                                          password=self.server.config.password, timeout=10.0))
        self.target.login()

    def stop(self) -> None:
        self.target.close()
        self.server.stop()

    def seeded(self) -> dict[str, list[str]]:
        """The tasks the server was seeded with, by status (what an embedded run hands over)."""
        return {s: list(ids) for s, ids in self.server.state_document()["tasks"].items()}

    def session(self, *, in_progress: int = 0, statuses: Iterable[str] = (), given: dict[str, list[str]] | None = None,
                provision: bool = True, **kwargs: Any) -> SuiteSession:
        """A fresh session over fresh tasks: `in_progress` IN_PROGRESS ones and one per `statuses`."""
        pool: dict[str, list[str]] = {s: list(ids) for s, ids in (given or {}).items()}
        if in_progress:
            pool.setdefault("IN_PROGRESS", []).extend(self.server.create_tasks("IN_PROGRESS", in_progress))
        for status in statuses:
            pool.setdefault(status, []).extend(self.server.create_tasks(status, 1))
        return new_session(self.target, pool, clock=self.clock, provision=self.server if provision else None,
                           **kwargs)

    def status(self, task_id: str) -> str | None:
        return self.server.store.status_of(task_id)

    def deletes_of(self, task_id: str) -> int:
        return sum(1 for r in self.server.request_log if r.method == "DELETE" and r.task_id == task_id)


def stop_all(references: Iterable[Reference]) -> None:
    """Stop servers side by side: each waits for its own shutdown, which need not add up."""
    threads = [threading.Thread(target=r.stop) for r in references]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@contextmanager
def references(**config: Any) -> Iterator[Callable[..., Reference]]:
    """`get(*defects)`: one Reference per set of defects, started on first use with `config`, all
    stopped at the end (a module's `servers` fixture)."""
    started: dict[tuple[str, ...], Reference] = {}

    def get(*defects: str) -> Reference:
        key = tuple(sorted(defects))
        if key not in started:
            started[key] = Reference(key, **config)
        return started[key]

    try:
        yield get
    finally:
        stop_all(started.values())


# -- a scripted target ------------------------------------------------------------------------------
Answer = int | None  # an HTTP status, or None for no answer at all


class ScriptedTarget:
    """A target held in a dict: DELETE cancels IN_PROGRESS (200), refuses other tasks (409) and answers
    404 to unknown ids; GET answers the task. `on_delete` / `on_get` override single answers: they
    get (target, task_id) and return a status, None (no answer), or ... to fall back to the default."""

    def __init__(self, tasks: dict[str, str] | None = None, *,
                 on_delete: Callable[[ScriptedTarget, str], Any] | None = None,
                 on_get: Callable[[ScriptedTarget, str], Any] | None = None,
                 credentials: bool = True) -> None:
        self.tasks: dict[str, str] = dict(tasks or {})
        self.on_delete = on_delete
        self.on_get = on_get
        self.config = TargetConfig(base_url="http://scripted.invalid", token="t" if credentials else None)
        self.log: list[tuple[str, str]] = []
        self.created = 0

    # what the session's `provision` offers
    # The lane's hooks (engine.lanes): a scripted target sends nothing in the background.
    def urgent(self) -> None:
        pass

    def is_urgent(self) -> bool:
        return False

    def halt(self, reason: BaseException | None) -> None:
        pass

    def create_tasks(self, status: str, count: int = 1) -> list[str]:
        ids = []
        for _ in range(count):
            self.created += 1
            task_id = f"00000000-0000-4000-8000-{self.created:012d}"
            self.tasks[task_id] = status
            ids.append(task_id)
        return ids

    def _exchange(self, method: str, task_id: str, answer: Answer, body: Any, purpose: str) -> Exchange:
        request = RecordedRequest(method=method, url=f"http://scripted.invalid/v1/tasks/{task_id}")
        if answer is None:
            return Exchange(request=request, response=None, error="connection reset", purpose=purpose,
                            task_id=task_id)
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = RecordedResponse(status=answer, reason="", headers=headers, body=raw, elapsed=0.001)
        return Exchange(request=request, response=response, purpose=purpose, task_id=task_id)

    def cancel(self, encoded_id: str, *, purpose: str, task_id: str | None = None, **_: Any) -> Exchange:
        task_id = task_id or encoded_id
        self.log.append(("DELETE", task_id))
        answer = self.on_delete(self, task_id) if self.on_delete else ...
        if answer is ...:
            status = self.tasks.get(task_id)
            if status is None:
                answer = 404
            elif status == "IN_PROGRESS":
                self.tasks[task_id] = "CANCELLED"
                answer = 200
            else:
                answer = 409
        body = None if answer in (None, 200) else {"errorCode": "X", "message": "refused"}
        return self._exchange("DELETE", task_id, answer, body, purpose)

    def get_task(self, task_id: str, *, purpose: str) -> Exchange:
        self.log.append(("GET", task_id))
        answer = self.on_get(self, task_id) if self.on_get else ...
        if answer is ...:
            answer = 200 if task_id in self.tasks else 404
        body: Any = None
        if answer == 200:
            body = {"id": task_id, "status": self.tasks.get(task_id)}
        elif answer is not None:
            body = {"errorCode": "X", "message": "no"}
        return self._exchange("GET", task_id, answer, body, purpose)

    def run_concurrently(self, calls: list[Callable[[], Exchange]]) -> list[Exchange]:
        return [call() for call in calls]

    def deletes(self, task_id: str | None = None) -> int:
        return sum(1 for m, t in self.log if m == "DELETE" and (task_id is None or t == task_id))

    def gets(self, task_id: str | None = None) -> int:
        return sum(1 for m, t in self.log if m == "GET" and (task_id is None or t == task_id))


def scripted_session(target: ScriptedTarget, *, provision: bool = False, given: dict[str, list[str]] | None = None,
                     clock: FakeClock | None = None, **kwargs: Any) -> SuiteSession:
    """A session over `target`; unless `given`, every task of the target is handed over by status."""
    if given is None:
        given = {}
        for task_id, status in target.tasks.items():
            given.setdefault(status, []).append(task_id)
    return new_session(target, given, clock=clock or FakeClock(), provision=target if provision else None, **kwargs)


# -- reading the verdict ----------------------------------------------------------------------------
def result(session: SuiteSession, rid: str) -> RequirementResult:
    return next(r for r in session.recorder.results() if r.requirement.id == rid)


def outcome(session: SuiteSession, rid: str) -> Outcome:
    return result(session, rid).outcome


def messages(session: SuiteSession, rid: str) -> list[str]:
    return [str(v) for f in result(session, rid).findings for v in f.violations]


def evidence(session: SuiteSession, rid: str) -> list[Exchange | None]:
    return [f.exchange for f in result(session, rid).findings]

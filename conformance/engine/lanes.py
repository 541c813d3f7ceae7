"""The behaviour scenarios in the background, beside the schema phase.

The schema phase (the corpus, near-misses and generated ids) and the behaviour scenarios are
independent work, and against a target that takes tens of milliseconds per answer each costs
seconds of waiting. Run one after the other, the run costs their sum; side by side, the longer
of the two. What makes that safe:

- Tasks are taken in the order of a one-at-a-time run: the scenarios that take IN_PROGRESS
  tasks (the takers) each run in a thread of their own, started once the taker before it has
  taken its tasks (`taken`, or its end), so a taker's settle window (up to `--settle-timeout`
  against an asynchronous target) runs beside the next one instead of before it. The ones that
  build on another wait for it where they need it (BEH-RECANCEL for BEH-CANCEL's cancel to
  settle, BEH-RACE's verdict for the cancel mode the earlier ones saw: `after`). The other
  scenarios run one after the other in one thread, and the state machine (`beside`, the longest)
  in its own, both once every taker has taken its tasks; its end-of-run re-reads wait for all
  the others.
- IN_PROGRESS tasks are taken exclusively from the pool, and the schema phase never touches one.
- A refusable task is used by one party at a time (`TaskHolds`): a read-cancel-read sequence
  holds its task, so a change is always blamed on the request that made it.
- `--concurrency` stays the cap on requests in flight across both lanes (`Target`).
- With `--concurrency 1` nothing runs beside anything: each scenario runs when its test asks.

The pytest items stay one per requirement: each scenario's item waits for the lane to finish
that scenario and re-raises whatever it raised (a spent budget, a target that stopped
answering), so the plugin turns it into an outcome exactly as before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING

from conformance.errors import Interrupted, NoVerdict
from conformance.threads import serialize_ast_parsing

if TYPE_CHECKING:
    from conformance.engine.session import SuiteSession
    from conformance.model import Requirement


SWITCH_INTERVAL = 0.001


class TaskHolds:
    """Task ids a party is using right now; another party that needs one of them waits.

    A party holds all its ids at once or none (so two parties never wait for each other), and
    never asks for more while it holds some. Overlapping parties get in in the order they asked:
    the state machine, which needs its three known tasks at once, would otherwise wait for as long
    as near-miss chains and refusal checks keep taking one of them at a time.
    """

    def __init__(self) -> None:
        self._held: set[str] = set()
        # The parties waiting, in the order they asked (each its own set object).
        self._waiting: list[set[str]] = []
        self._changed = threading.Condition()

    def _may_enter(self, ids: set[str]) -> bool:
        if ids & self._held:
            return False
        for earlier in self._waiting:
            if earlier is ids:
                return True
            if earlier & ids:
                return False
        return True

    @contextmanager
    def hold(self, task_ids: Iterable[str]) -> Iterator[None]:
        ids = set(task_ids)
        with self._changed:
            self._waiting.append(ids)
            try:
                self._changed.wait_for(lambda: self._may_enter(ids))
            except BaseException:
                # Interrupted while waiting: the parties queued behind this one may go now. (Once
                # in, its held ids keep out whoever its place in the queue kept out: no one to wake.)
                self._changed.notify_all()
                raise
            finally:
                self._waiting[:] = [w for w in self._waiting if w is not ids]
            self._held |= ids
        try:
            yield
        finally:
            with self._changed:
                self._held -= ids
                self._changed.notify_all()


class ScenarioLane:
    """Runs `scenarios` in order, in a background thread once `start()`ed, else on demand."""

    def __init__(self, session: SuiteSession, scenarios: Sequence[Requirement],
                 halt: Callable[[BaseException | None], None]) -> None:
        self._session = session
        self._scenarios = list(scenarios)
        self._halt = halt
        self._futures: dict[str, Future[None]] = {r.id: Future() for r in self._scenarios}
        # Set once the scenario took the IN_PROGRESS tasks it will use (at the latest when it ends).
        self._taken: dict[str, threading.Event] = {r.id: threading.Event() for r in self._scenarios}
        self._next = 0
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._settling = threading.Lock()
        # On demand (no thread): the item that asks runs what comes before it, in order.
        self._inline = threading.Lock()
        # The process's GIL switch interval before start(), restored by stop().
        self._switch_interval: float | None = None

    def start(self) -> None:
        """Run the scenarios in background threads from now on (idempotent).

        Each scenario that takes IN_PROGRESS tasks gets a thread, started once the one before has
        taken its tasks (so tasks are taken in the order a one-at-a-time run takes them, and one
        scenario's settle window runs beside the next); the others run in order in one thread,
        and a `beside` scenario (the state machine: the longest) in its own, once all have.
        """
        if self._threads or self._next:
            return
        serialize_ast_parsing()
        # A scenario step waits for the one before: after its answer arrives, its thread needs the
        # GIL back from the schema phase's CPU work (Hypothesis drawing, the checks). Python hands
        # it over after the switch interval, 5 ms by default, several times per request; at 1 ms
        # the state machine's chain of ~80 requests loses about 7 ms less on each (measured at
        # 50 ms per answer). Restored when the lane stops.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        takers = [r for r in self._scenarios if r.takes_in_progress and not r.beside]
        rest = [r for r in self._scenarios if not r.takes_in_progress and not r.beside]
        beside = [r for r in self._scenarios if r.beside]
        # Each taker once the one before has taken its tasks; the rest, in order, once all have.
        self._threads = [threading.Thread(target=self._run_line, args=([r], takers[:i][-1:]), name=f"sddc-{r.id}",
                                          daemon=True) for i, r in enumerate(takers)]
        self._threads.append(threading.Thread(target=self._run_line, args=(rest, takers), name="sddc-scenarios",
                                              daemon=True))
        self._threads += [threading.Thread(target=self._run_line, args=([r], takers), name=f"sddc-{r.id}",
                                           daemon=True) for r in beside]
        for thread in self._threads:
            thread.start()

    def taken(self, requirement_id: str) -> None:
        """The scenario took every IN_PROGRESS task it will use: the next taker may start."""
        if requirement_id in self._taken:
            self._taken[requirement_id].set()

    def after(self, requirement_id: str) -> None:
        """Wait until that scenario finished (one at a time, or not selected: nothing to wait for)."""
        future = self._futures.get(requirement_id)
        if self._threads and future is not None:
            wait([future])

    def after_others(self, requirement_id: str) -> None:
        """Wait until every other scenario finished (one at a time: already so)."""
        if not self._threads:
            return
        for scenario in self._scenarios:
            if scenario.id != requirement_id:
                wait([self._futures[scenario.id]])

    def result(self, requirement_id: str) -> None:
        """Wait for the scenario to finish; re-raise what it raised, in the caller's thread."""
        future = self._futures[requirement_id]
        if not self._threads:
            with self._inline:
                while not future.done() and self._next < len(self._scenarios):
                    self._run(self._scenarios[self._next])
                    self._next += 1
        try:
            future.result()
        except KeyboardInterrupt:
            # Ctrl-C while waiting: the lane stops sending too, then pytest ends the run.
            self.stop()
            raise

    def stop(self) -> None:
        """Stop sending (a scenario under way ends at its next request) and wait for the threads."""
        self._stop.set()
        for event in self._taken.values():
            event.set()  # a thread waiting for a taker that never ran wakes, sees the stop, ends
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        alive = [t for t in self._threads if t.is_alive() and t is not threading.current_thread()]
        if alive:
            self._halt(Interrupted("the run ended"))
            try:
                for thread in alive:
                    thread.join()
            finally:
                self._halt(None)
        for requirement_id in self._futures:
            self._settle(requirement_id, Interrupted("the run ended before this scenario ran"))

    def _run_line(self, line: list[Requirement], after: list[Requirement]) -> None:
        # Each scenario step waits for the one before: its requests go before the probes queued
        # in the schema phase's pool, which has plenty to keep the other slots busy.
        self._session.target.urgent()
        for before in after:
            self._taken[before.id].wait()
        for scenario in line:
            if self._stop.is_set():
                return
            self._run(scenario)

    def _run(self, scenario: Requirement) -> None:
        self._session.activity = f"{scenario.id}: {scenario.title}"
        try:
            scenario.func(self._session)
        except BaseException as exc:  # handed to the scenario's item, which re-raises it
            self._settle(scenario.id, exc)
            # What ends the run (the target stopped answering, an interrupt) ends the lane, and
            # every scenario still waited for ends with it (its item re-raises it, as the first
            # item to meet it would in a one-at-a-time run); a spent budget or a crashed scenario
            # leaves the later ones to say so for themselves.
            if isinstance(exc, NoVerdict | Interrupted | KeyboardInterrupt):
                self._stop.set()
                for requirement_id in self._futures:
                    self._settle(requirement_id, exc)
        else:
            self._settle(scenario.id, None)
        finally:
            # It sends nothing more: once every scenario has ended, what the budget holds is breadth's.
            budget = getattr(self._session, "budget", None)
            if budget is not None:
                budget.release(scenario.id)

    def _settle(self, requirement_id: str, exc: BaseException | None) -> None:
        # An ended scenario takes nothing more: whoever waits to take after it may go (and stop).
        self._taken[requirement_id].set()
        with self._settling:
            future = self._futures[requirement_id]
            if future.done():
                return
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)


__all__ = ["ScenarioLane", "TaskHolds"]

"""Schema conformance: ids go to DELETE /v1/tasks/{id}; every answer meets every check.

Stateless and safe against any target: the ids are either generated (and checked not to name an
existing task) or known tasks in statuses that must refuse a cancel.

The requests are sent once per run, by whichever item runs first (`exercise`): first the
deterministic corpus (every id class once), then near-misses of known refusable tasks, then
Hypothesis' exploration, no id sent twice. Each response requirement is then its own test item,
asserting only its own findings, so `pytest --pyargs conformance.suite` lists them one by one.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from conformance import requirements
from conformance.engine import generation
from conformance.engine.fanout import fan_out
from conformance.engine.generation import NearMiss, Probe
from conformance.engine.session import SuiteSession
from conformance.model import Exchange, Violation
from conformance.requirements import scenarios as behavior
from conformance.suite._assert import assert_requirements_held
from conformance.tasks import encode_id

RESPONSE_REQUIREMENTS = [r.id for r in requirements.response_checks()]
PROBES_PER_EXAMPLE = 5
# Each example draws a few spare probes: a drawn id already sent this run is skipped, not re-sent.
DRAWS_PER_EXAMPLE = 6
# Rounds of exploration when duplicates left the count short; bounded so a tiny id space ends.
ROUNDS = 4

pytestmark = [pytest.mark.sddc_profile("schema")]

# Sessions whose schema requests went out already (by id; the weak reference tells a reused id).
_EXERCISED: dict[int, weakref.ref[SuiteSession]] = {}


@pytest.mark.parametrize(
    "requirement_id", [pytest.param(rid, marks=pytest.mark.requirement(rid), id=rid) for rid in RESPONSE_REQUIREMENTS]
)
def test_response_requirement(sddc_session: SuiteSession, requirement_id: str) -> None:
    exercise(sddc_session)
    assert_requirements_held(sddc_session, [requirement_id])


def exercise(session: SuiteSession) -> None:
    """Send the schema profile's requests once per session (the first item to run does it)."""
    ref = _EXERCISED.get(id(session))
    if ref is not None and ref() is session:
        return
    _EXERCISED[id(session)] = weakref.ref(session)
    sent: set[str] = set()
    classes: Counter[str] = Counter()
    answers: dict[str, int | None] = {}
    stop = threading.Event()
    try:
        corpus = choose_corpus(session, sent, classes)
        misses = choose_near_misses(session, sent, classes)

        def known_classes() -> None:
            send_corpus(session, corpus, answers, stop)
            send_near_misses(session, misses, answers, stop)

        # Drawing the generated ids is CPU work that needs no answer; the corpus and the near-misses
        # are waiting on the target. So they go out in the background while Hypothesis draws here,
        # in the main thread (where Hypothesis expects to run).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sddc-corpus") as background:
            sending = background.submit(known_classes)
            try:
                drawn = draw_generated(session, sent)
                sending.result()
            except BaseException:
                stop.set()  # an interrupt or an error: what was not sent yet is not sent
                raise
        send_generated(session, drawn)
    finally:
        session.id_classes.update(classes)


def choose_corpus(session: SuiteSession, sent: set[str], classes: Counter[str]) -> list[Probe]:
    """Each known refusable task once, then every corpus class not sent already."""
    # Hypothesis then draws only new ids.
    known = [(f"known {status} task", Probe(encode_id(task_id), f"known {status} task", known_status=status))
             for status, task_id in session.pool.non_cancellable()]
    chosen: list[Probe] = []
    for cls, probe in [*known, *generation.corpus_for(session.pool.known_ids())]:
        if probe.encoded in sent:
            continue
        sent.add(probe.encoded)
        classes[cls] += 1
        chosen.append(probe)
    return chosen


def choose_near_misses(session: SuiteSession, sent: set[str], classes: Counter[str]) -> list[list[NearMiss]]:
    """Ids next to each known refusable task's, grouped by task."""
    by_task: dict[str, list[NearMiss]] = {}
    for miss in generation.near_misses(session.pool.non_cancellable(), session.pool.known_ids()):
        if miss.probe.encoded in sent:
            continue
        sent.add(miss.probe.encoded)
        classes[f"near-miss: {miss.kind}"] += 1
        by_task.setdefault(miss.task_id, []).append(miss)
    return list(by_task.values())


def send_corpus(session: SuiteSession, chosen: list[Probe], answers: dict[str, int | None],
                stop: threading.Event) -> None:
    """Send the corpus; `answers` keeps each known task's own answer."""
    session.activity = "schema checks: id corpus"

    def one(probe: Probe) -> None:
        if stop.is_set():
            return
        exchange = send(session, probe)
        if probe.known_status is not None:
            answers[probe.raw] = behavior.status_of(exchange)
            behavior.judge_known_refusal(session, probe.known_status, probe.raw, exchange)

    # Each id is independent of the others: they go out side by side.
    fan_out(chosen, one, session.options.concurrency)


def send_near_misses(session: SuiteSession, by_task: list[list[NearMiss]], answers: dict[str, int | None],
                     stop: threading.Event) -> None:
    """Ids next to a known refusable task's: 404 (case-flipped: as the task's own answer), task unchanged."""
    session.activity = "schema checks: near-miss ids"
    # What each task reads just before its near-misses: "unchanged" is judged against this, not
    # against the status it was handed over in, so a task the target wrongly changed on its own
    # cancel (BEH-NOT-CANCELLABLE's finding) is not blamed on the near-misses.

    def one_task(misses: list[NearMiss]) -> None:
        # In order within one task (each is judged against what the task read just before it);
        # different tasks go side by side.
        if stop.is_set():
            return
        task_id = misses[0].task_id
        before = behavior.read(session, task_id, f"BEH-UNKNOWN-404: read {task_id} before its near-miss ids").status
        for miss in misses:
            if stop.is_set():
                return
            before = judge_near_miss(session, miss, before, answers.get(task_id))

    fan_out(by_task, one_task, session.options.concurrency)


def judge_near_miss(session: SuiteSession, miss: NearMiss, before: str | None, own_answer: int | None) -> str | None:
    """Send one near-miss id and judge it; returns what the task reads afterwards (the next baseline)."""
    probe = miss.probe
    exchange = session.target.cancel(probe.encoded, purpose=f"generated id ({probe.origin})", task_id=probe.raw)
    session.recorder.check(exchange)
    code = behavior.status_of(exchange)
    if code is None:
        return before
    violations = []
    # A case-flipped UUID may name the same task (RFC 4122): then it answers as the task's own id did.
    same_task = miss.may_resolve and code == own_answer
    if miss.may_resolve:
        if code not in (404, 409) and not same_task and code < 500:  # a 5xx is SRV-NO-5XX's
            violations.append(Violation(f"case-flipped id {probe.raw!r} of {miss.status} task {miss.task_id} "
                                        f"answered {code}; expected 404 (no task) or, as the task's own id, "
                                        f"{own_answer if own_answer is not None else 409}"))
    elif code == 409 or 200 <= code < 300:
        violations.append(Violation(f"near-miss id {probe.raw!r} ({miss.kind} of {miss.status} task "
                                    f"{miss.task_id}) answered {code}; an id that names no task must answer 404"))
    after = behavior.read(session, miss.task_id, f"BEH-UNKNOWN-404: read {miss.task_id} after a near-miss cancel")
    if after.status is not None and before is not None and after.status != before and not same_task:
        violations.append(Violation(f"after a cancel of near-miss id {probe.raw!r} task {miss.task_id} reads "
                                    f"{after.status}, not {before}"))
    session.recorder.record("BEH-UNKNOWN-404", violations, exchange)
    return after.status if after.status is not None else before


def draw_generated(session: SuiteSession, sent: set[str]) -> list[Probe]:
    """Hypothesis' exploration: up to --max-examples ids not sent already (nothing is sent here)."""
    known = session.pool.known_ids()
    # The known refusable tasks went out with the corpus; here only generated ids.
    strategy = generation.probes((), known, session.contract)

    total = session.options.max_examples
    count = 0
    # Drawing needs no answer (generation does not adapt to responses), so the ids are drawn
    # first, with the run's seed, and then sent side by side: the same seed gives the same set.
    drawn: list[Probe] = []

    def explore(round_seed: int, examples: int) -> None:
        # No shrinking: every response is recorded as it comes; the verdict needs all of them, and
        # shrinking would spend an appliance's request budget on re-sends. Probes come in batches:
        # Hypothesis' cost per example, not per draw, is what dominates a fast target.
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(round_seed)
        @given(batch=st.lists(strategy, min_size=DRAWS_PER_EXAMPLE, max_size=DRAWS_PER_EXAMPLE))
        def cancel(batch: list[Probe]) -> None:
            nonlocal count
            in_batch = 0
            for probe in batch:
                if count >= total or in_batch >= PROBES_PER_EXAMPLE:
                    return
                # Never twice in a run, never a listed task's id: a duplicate is skipped, not re-sent.
                if probe.encoded in sent or probe.raw in known:
                    continue
                sent.add(probe.encoded)
                drawn.append(probe)
                count += 1
                in_batch += 1

        cancel()

    # Draws that repeat an id sent already leave the first round short; further rounds (each
    # with its own seed, derived from the run's) draw again, a bounded number of times.
    for round_number in range(ROUNDS):
        missing = total - count
        if missing <= 0:
            break
        explore(session.seed + round_number * 7919, -(-missing // PROBES_PER_EXAMPLE))
    return drawn


def send_generated(session: SuiteSession, drawn: list[Probe]) -> None:
    session.activity = f"schema checks: {len(drawn)} generated ids"

    def one(probe: Probe) -> None:
        send(session, probe)  # the exchange is not kept: bodies of up to 16 MiB each add up

    fan_out(drawn, one, session.options.concurrency)


def send(session: SuiteSession, probe: Probe) -> Exchange:
    purpose = f"{probe.origin} (must be refused)" if probe.known_status else f"generated id ({probe.origin})"
    exchange = session.target.cancel(probe.encoded, purpose=purpose, task_id=probe.raw)
    session.recorder.check(exchange)
    if probe.known_status is None:
        behavior.judge_generated(session, exchange)
    return exchange


__all__ = ["exercise", "send"]

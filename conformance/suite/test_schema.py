"""Schema conformance: ids go to DELETE /v1/tasks/{id}; every answer meets every check.

Stateless and safe against any target: the ids are either generated (and checked not to name an
existing task) or known tasks in statuses that must refuse a cancel.

The requests are sent once per run, by whichever item runs first (`exercise`): first the
deterministic corpus (every id class once), then near-misses of known refusable tasks, then
Hypothesis' exploration, no id sent twice. Each response requirement is then its own test item,
asserting only its own findings, so `pytest --pyargs conformance.suite` lists them one by one.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from conformance import requirements
from conformance.engine import generation
from conformance.engine.budget import Budget
from conformance.engine.fanout import Pool
from conformance.engine.generation import NearMiss, Probe
from conformance.engine.session import SuiteSession
from conformance.errors import Interrupted
from conformance.model import Exchange, Profile, Violation
from conformance.requirements import scenarios as behavior
from conformance.suite._assert import assert_requirements_held
from conformance.suite._lane import start_beside
from conformance.tasks import encode_id

RESPONSE_REQUIREMENTS = [r.id for r in requirements.response_checks()]

pytestmark = [pytest.mark.sddc_profile("schema")]

# Sessions whose schema requests went out already (by id; the weak reference tells a reused id).
_EXERCISED: dict[int, weakref.ref[SuiteSession]] = {}


@pytest.mark.parametrize(
    "requirement_id", [pytest.param(rid, marks=pytest.mark.requirement(rid), id=rid) for rid in RESPONSE_REQUIREMENTS]
)
def test_response_requirement(request: pytest.FixtureRequest, sddc_session: SuiteSession,
                              requirement_id: str) -> None:
    # The schema phase judges each known refusable task's refusal (its chain): said before the
    # scenarios start, so BEH-NOT-CANCELLABLE does not send the same requests again.
    sddc_session.schema_judges_refusals.update(task_id for _, task_id in sddc_session.pool.non_cancellable())
    # The behaviour scenarios (if this run has them) go out beside the schema phase.
    start_beside(request, sddc_session)
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
    try:
        chains, corpus = choose_known(session, sent, classes)
        # One pool for the whole phase. First the chains of each known refusable task (its own
        # cancel, then its near-miss ids, each judged against what the task read just before: a
        # chain stays in order); then the corpus. The generated ids need no answer to be drawn, so
        # they are taken (from the child that draws them, or from Hypothesis in this thread) while
        # those requests are on the wire, and join the same pool (draw_generated).
        with Pool(session.options.concurrency) as pool:
            try:
                for chain in chain_order(chains):
                    pool.submit(lambda c: send_chain(session, c), chain)
                session.activity = "schema checks: id corpus and near-miss ids"
                for probe in corpus:
                    pool.submit(lambda p: send_and_forget(session, p), probe)
                drawn = draw_generated(session, sent,
                                       lambda probe: pool.submit(lambda p: send_and_forget(session, p), probe))
                session.activity = f"schema checks: corpus, near-miss and {len(drawn)} generated ids"
                pool.finish()
            except KeyboardInterrupt:
                # Ctrl-C: nothing more goes out from any thread (the pool's, the scenario lane's),
                # so leaving the pool waits only for the requests already on the wire.
                session.target.halt(Interrupted("interrupted"))
                raise
    finally:
        session.id_classes.update(classes)
    if not session.options.profile.includes(Profile.BEHAVIOR):
        # Only a cancelled IN_PROGRESS task answers 200, and this profile cancels none: without a
        # 200 (a target may still answer one to an unknown id: then it is judged), say why.
        prefix = session.options.flag_prefix
        session.recorder.not_run("SCH-200-EMPTY", f"{prefix}profile schema never cancels an IN_PROGRESS task, so "
                                 f"no 200 came back to check (run {prefix}profile full with "
                                 f"{prefix}task IN_PROGRESS=<id>)")


@dataclass
class Chain:
    """A known refusable task: its own cancel, then its near-miss ids."""

    known: Probe
    misses: list[NearMiss] = field(default_factory=list)


def choose_known(session: SuiteSession, sent: set[str], classes: Counter[str]) -> tuple[list[Chain], list[Probe]]:
    """Each known refusable task once (with its near-misses), and every corpus class not sent already."""
    chains: dict[str, Chain] = {}
    known = session.pool.non_cancellable()
    if session.budget is not None and not session.options.profile.includes(Profile.BEHAVIOR):
        # Under --profile schema the refusals are breadth: as many tasks as the plan allots.
        known = known[:session.budget.units("known refusable tasks")]
    for status, task_id in known:
        probe = Probe(encode_id(task_id), f"known {status} task", known_status=status)
        if probe.encoded in sent:
            continue
        sent.add(probe.encoded)
        classes[f"known {status} task"] += 1
        chains[task_id] = Chain(probe)
    budget = session.budget
    corpus: list[Probe] = []
    for cls, probe in by_budget(generation.corpus_for(session.pool.known_ids()), budget, "id corpus"):
        if probe.encoded in sent:
            continue
        sent.add(probe.encoded)
        classes[cls] += 1
        corpus.append(probe)
    # The near-miss families come in priority order: the plan allots the first few ids.
    limit = budget.units("near-miss ids") if budget is not None else None
    for miss in generation.near_misses(session.pool.non_cancellable(), session.pool.known_ids(), limit=limit):
        if miss.probe.encoded in sent or miss.task_id not in chains:
            continue
        sent.add(miss.probe.encoded)
        classes[f"near-miss: {miss.kind}"] += 1
        chains[miss.task_id].misses.append(miss)
    return list(chains.values()), corpus


def by_budget(corpus: list[tuple[str, Probe]], budget: Budget | None, category: str) -> list[tuple[str, Probe]]:
    """The corpus ids the budget plan allots, in corpus order: when it cannot have them all, one of
    each class first, then a second of each, and so on, so a cut budget still covers every class."""
    if budget is None or budget.units(category) >= len(corpus):
        return corpus
    seen: Counter[str] = Counter()
    rank = []
    for index, (cls, _) in enumerate(corpus):
        rank.append((seen[cls], index))
        seen[cls] += 1
    chosen = {index for _, index in sorted(rank)[:budget.units(category)]}
    return [item for index, item in enumerate(corpus) if index in chosen]


def chain_order(chains: list[Chain]) -> list[Chain]:
    """One chain of each status first, then a second of each, and so on; longest first within.

    The end-of-run re-read waits until the run's first refusal in each status is some time old
    (requirements.scenarios.reconcile), and a chain starts with its task's refused cancel: with
    more chains than workers, a status whose chains all queued behind the others would hold the
    end of the run back by as long as a chain takes.
    """
    by_length = sorted(chains, key=lambda c: -len(c.misses))
    seen: Counter[str] = Counter()
    rank: dict[int, int] = {}
    for chain in by_length:
        rank[id(chain)] = seen[chain.known.known_status or ""]
        seen[chain.known.known_status or ""] += 1
    # A stable sort: within a rank, the longest chains stay first.
    return sorted(by_length, key=lambda c: rank[id(c)])


def send_chain(session: SuiteSession, chain: Chain) -> None:
    """A known task's cancel (judged as BEH-NOT-CANCELLABLE), then its near-miss ids.

    Each near-miss must answer 404 (one a standard makes equal to the task's id, a UUID in another
    hex case: 404 or as the task's own id did) and leave the task as it read just before:
    "unchanged" is judged against that read, not against the status the task was handed over
    in, so a task the target wrongly changed on its own cancel (BEH-NOT-CANCELLABLE's finding) is
    not blamed on the near-misses.
    """
    # The task is this chain's alone meanwhile: a scenario's cancel of it (side by side) would
    # otherwise show up as a change after a near-miss, blamed on the wrong requirement.
    with session.holding([chain.known.raw]):
        _send_chain(session, chain)


def _send_chain(session: SuiteSession, chain: Chain) -> None:
    probe = chain.known
    assert probe.known_status is not None
    before: str | None = None
    if probe.raw in session.cancels.refusals:
        # BEH-NOT-CANCELLABLE's scenario judged this refusal already: its answer is the task's own.
        own_answer = session.cancels.refusals[probe.raw]
    else:
        exchange = send(session, probe)
        own_answer = behavior.status_of(exchange)
        # The read that judges the refusal is also the near-misses' baseline.
        before = behavior.judge_known_refusal(session, probe.known_status, probe.raw, exchange)
    if not chain.misses:
        return
    task_id = probe.raw
    if before is None:
        before = behavior.read(session, task_id, f"BEH-UNKNOWN-404: read {task_id} before its near-miss ids").status
    # One read after the ids that must name no task, one after those that may name it (a
    # case-flipped UUID): a change is blamed on the group that came before it, and a change after
    # an id that resolved to the task itself is its own cancel's, not a near-miss's.
    for group in ([m for m in chain.misses if not m.may_resolve], [m for m in chain.misses if m.may_resolve]):
        if group:
            before = judge_near_misses(session, group, before, own_answer)


def judge_near_misses(session: SuiteSession, misses: list[NearMiss], before: str | None,
                      own_answer: int | None) -> str | None:
    """Send near-miss ids of one task, judge each answer, then read the task once: it must read
    as before. Returns what the task reads afterwards (the next baseline)."""
    resolved = False
    for miss in misses:
        # Only the last exchange is kept (the evidence of a change): bodies of up to 16 MiB add up.
        last, same_task = judge_near_miss(session, miss, own_answer)
        resolved = resolved or same_task
    first = misses[0]
    after = behavior.read(session, first.task_id,
                          f"BEH-UNKNOWN-404: read {first.task_id} after near-miss cancels")
    if after.status is not None and before is not None and after.status != before and not resolved:
        ids = ", ".join(repr(m.probe.raw) for m in misses)
        how = "; ".join(dict.fromkeys(m.description for m in misses))
        session.recorder.record("BEH-UNKNOWN-404", [Violation(
            f"after cancels of near-miss ids {ids} ({', '.join(m.kind for m in misses)} of {first.status} task "
            f"{first.task_id}) the task reads {after.status}, not {before}: one of them reached it ({how})")],
            last)
    return after.status if after.status is not None else before


def judge_near_miss(session: SuiteSession, miss: NearMiss, own_answer: int | None) -> tuple[Exchange, bool]:
    """Send one near-miss id and judge its answer; also says whether it named the task itself."""
    probe = miss.probe
    exchange = session.target.cancel(probe.encoded, purpose=f"generated id ({probe.origin})", task_id=probe.raw)
    session.recorder.check(exchange)
    code = behavior.status_of(exchange)
    if code is None:
        return exchange, False
    violations = []
    # A UUID in another hex case may name the same task (RFC 9562): then it answers as the task's own id did.
    same_task = miss.may_resolve and code == own_answer
    if miss.may_resolve:
        if code not in (404, 409) and not same_task and code < 500:  # a 5xx is SRV-NO-5XX's
            violations.append(Violation(f"{miss.kind} id {probe.raw!r} of {miss.status} task {miss.task_id} "
                                        f"answered {code}; expected 404 (no task) or, as the task's own id, "
                                        f"{own_answer if own_answer is not None else 409}"))
    elif code == 409 or 200 <= code < 300:
        violations.append(Violation(f"near-miss id {probe.raw!r} ({miss.kind} of {miss.status} task "
                                    f"{miss.task_id}) answered {code}; an id that names no task must answer 404, "
                                    f"and this one reached a task: {miss.description}"))
    session.recorder.record("BEH-UNKNOWN-404", violations, exchange)
    return exchange, same_task


def draw_generated(session: SuiteSession, sent: set[str], emit: Callable[[Probe], object]) -> list[Probe]:
    """Hypothesis' exploration: up to --max-examples ids not sent already, each passed to `emit`
    as soon as it is drawn (the caller sends it side by side while the drawing goes on).

    A command-line run drew them in a child process started before the suite loaded
    (`session.draws`, on another core); otherwise they are drawn here, in the main thread (where
    Hypothesis expects to run). Either way the run's seed fixes the ids.
    """
    known = session.pool.known_ids()
    total = session.options.max_examples
    drawn: list[Probe] = []

    budget = session.budget
    spent = [False]

    def take(probe: Probe) -> bool:
        # Never twice in a run, never a listed task's id: a duplicate is skipped, not re-sent.
        if spent[0] or probe.encoded in sent or probe.raw in known:
            return False
        # Within the plan's allotment (or reserves released early): the MUSTs' minimum comes first.
        if budget is not None and not budget.admit("generated ids"):
            spent[0] = True
            return False
        sent.add(probe.encoded)
        drawn.append(probe)
        emit(probe)
        return True

    if session.draws is not None:
        for encoded, origin in session.draws.pairs():
            take(Probe(encoded, origin))
            if len(drawn) >= total or spent[0]:
                break
        session.draws.stop()
    else:
        # The known refusable tasks went out with the corpus; here only generated ids.
        generation.explore(session.seed, total, take, session.contract, known)
    return drawn


def send_and_forget(session: SuiteSession, probe: Probe) -> None:
    """Send and judge one probe; the exchange is not kept (a finished future would hold it until
    the whole phase ends, and bodies of up to 16 MiB each add up)."""
    send(session, probe)


def send(session: SuiteSession, probe: Probe) -> Exchange:
    purpose = f"{probe.origin} (must be refused)" if probe.known_status else f"generated id ({probe.origin})"
    exchange = session.target.cancel(probe.encoded, purpose=purpose, task_id=probe.raw)
    session.recorder.check(exchange)
    if probe.known_status is None:
        behavior.judge_generated(session, exchange)
    return exchange


__all__ = ["exercise", "send"]

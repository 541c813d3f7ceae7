"""--dry-run: what the run would send, to which id, for which requirement; nothing is sent."""

from __future__ import annotations

from collections.abc import Callable

from conformance import requirements
from conformance.engine.session import SuiteSession


def print_plan(session: SuiteSession, echo: Callable[[str], None]) -> None:
    options = session.options
    echo(f"dry run against {session.target.base_url}: nothing will be sent")
    echo(f"profile {options.profile}; budget {options.max_requests} requests; seed {session.seed}")
    selected = session.selected()
    if session.budget is not None:
        for line in session.budget.plan.lines():
            echo(line)
    if options.profile.includes(requirements.Profile.SCHEMA):
        known = session.pool.non_cancellable()
        # Here, not at the top: generation loads Schemathesis, which only a schema dry run needs.
        from conformance.engine.generation import corpus_for, near_misses

        corpus = corpus_for(session.pool.known_ids())
        misses = near_misses(known, session.pool.known_ids())
        budget = session.budget
        sent_corpus = min(len(corpus), budget.units("id corpus")) if budget is not None else len(corpus)
        generated = (min(options.max_examples, budget.units("generated ids")) if budget is not None
                     else options.max_examples)
        sent_misses = min(len(misses), budget.units("near-miss ids")) if budget is not None else len(misses)
        echo(f"  {'id corpus':<20} DELETE /v1/tasks/<id> × {sent_corpus} of {len(corpus)}, across "
             f"{len({cls for cls, _ in corpus})} classes (one of each first); × {sent_misses} of {len(misses)} "
             f"near-misses of known refusable tasks ({len({f.name for m in misses for f in m.families})} "
             "families of id equivalence, in priority order), a GET of the task after each group")
        echo(f"  {'generated ids':<20} DELETE /v1/tasks/<generated id> × {generated} of {options.max_examples}, "
             f"checked against "
             f"{len(session.pool.known_ids())} known ids so none names an existing task"
             + (f"; mixed with {len(known)} known tasks that must refuse" if known else ""))
    for requirement in requirements.catalogue():
        if requirement.id not in selected:
            continue
        for line in plan_lines(requirement, session):
            echo(f"  {requirement.id:<20} {line}")


def plan_lines(requirement: requirements.Requirement, session: SuiteSession) -> list[str]:
    if requirement.plan is not None:
        return list(requirement.plan(session))
    if requirement.id == "SCH-200-EMPTY" and not _cancels_a_task(session):
        # Only a cancelled IN_PROGRESS task answers 200; a run that cancels none cannot show it.
        return ["checks any 200 the run receives; none is expected (no IN_PROGRESS task is cancelled in this "
                "run), so it is likely NOT RUN"]
    return ["checks every DELETE response the run receives"]


def _cancels_a_task(session: SuiteSession) -> bool:
    if not session.options.profile.includes(requirements.Profile.BEHAVIOR):
        return False
    pool = session.pool
    return bool(pool.given.get("IN_PROGRESS") or session.provision is not None
                or (pool.allow_cancel_discovered and session.options.discover))

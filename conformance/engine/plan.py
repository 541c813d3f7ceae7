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
    if options.profile.includes(requirements.Profile.SCHEMA):
        known = session.pool.non_cancellable()
        # Here, not at the top: generation loads Schemathesis, which only a schema dry run needs.
        from conformance.engine.generation import corpus_for, near_misses

        corpus = corpus_for(session.pool.known_ids())
        misses = near_misses(known, session.pool.known_ids())
        echo(f"  {'id corpus':<20} DELETE /v1/tasks/<id> × {len(corpus)}, one per id of "
             f"{len({cls for cls, _ in corpus})} classes; × {len(misses)} near-misses of known refusable tasks "
             f"({len({f.name for m in misses for f in m.families})} families of id equivalence), "
             "a GET of the task after each group")
        echo(f"  {'generated ids':<20} DELETE /v1/tasks/<generated id> × {options.max_examples}, checked against "
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

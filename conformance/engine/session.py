"""One run's live state, shared by the CLI, the pytest plugin and the suite's tests.

There is no module-global session: the runner hands its session to pytest through
`config.stash` (see `engine.runner.SESSION_KEY`), and the fixtures read it from there.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from conformance.bodies import ensure_recursion_headroom
from conformance.contract import run_contract
from conformance.engine.behaviour import BehaviourObserver
from conformance.engine.budget import UNLIMITED, Budget, Facts, plan
from conformance.engine.draws import DrawnIds
from conformance.engine.embedded import EmbeddedServer
from conformance.engine.fanout import fan_out
from conformance.engine.lanes import ScenarioLane, TaskHolds
from conformance.engine.recorder import Recorder
from conformance.engine.target import Target, TargetConfig
from conformance.errors import (
    AuthenticationFailed,
    BudgetExhausted,
    Interrupted,
    NoVerdict,
    OptionsError,
    StaleTasks,
    TargetError,
    TargetUnreachable,
)
from conformance.model import Exchange, Profile, Requirement
from conformance.options import DEFAULT_SETTLE_TIMEOUT, EMBEDDED_SETTLE_TIMEOUT, RunOptions
from conformance.requirements import catalogue
from conformance.requirements.checks import CheckContext
from conformance.requirements.scenarios import CancelLedger
from conformance.spec import Fragment, load_fragment
from conformance.tasks import STATUSES, TaskPool, encode_id, normalise_status
from conformance.text import clean_line

# A target that answers 401 to some ids while the token works is judged for it; these probes tell
# the two apart, and a handful is enough.
MAX_TOKEN_PROBES = 3
# The preflight tries its first request this often before the target counts as unreachable.
PREFLIGHT_TRIES = 3
T = TypeVar("T")
R = TypeVar("R")
# Stale ids are named in one line: a few, then a count.
STALE_IDS_SHOWN = 5


class Provisioner(Protocol):
    """Creates tasks on the target: the embedded reference server, in this process or a child."""

    def create_tasks(self, status: str, count: int = 1) -> list[str]: ...


@dataclass
class SuiteSession:
    options: RunOptions
    target: Target
    recorder: Recorder
    pool: TaskPool
    seed: int
    embedded: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Wall time is measured from here (monotonic), for complete and partial results alike.
    started_monotonic: float = field(default_factory=time.monotonic)
    # The request budget ran out: NOT RUN reasons say so instead of "not observed".
    budget_exhausted: bool = False
    notes: list[str] = field(default_factory=list)
    # Tasks this run cancelled with a 200, so later scenarios can check they stay cancelled.
    cancelled_by_suite: list[str] = field(default_factory=list)
    fatal: TargetError | None = None
    # Tests that crashed instead of judging: the run has no verdict.
    internal_errors: list[str] = field(default_factory=list)
    # What the run is doing now, for the live progress display ("SCH-*: generated ids").
    activity: str = ""
    # What the target says about itself (GET /v1/sddc-managers), for the reports.
    product: dict[str, str] | None = None
    # Where scenarios can create fresh IN_PROGRESS tasks (the embedded reference server only).
    provision: Provisioner | None = None
    # Generated ids a child process is drawing for this run (the command line starts it), else None.
    draws: DrawnIds | None = None
    # The cancel operation's contract (--spec, else the shipped fragment): what every check reads.
    contract: Fragment = field(default_factory=load_fragment)
    _token_probes: int = 0
    # How long a 200 cancel may take to read CANCELLED (RunOptions.settle_timeout, resolved).
    settle_timeout: float = DEFAULT_SETTLE_TIMEOUT
    # Injectable so the suite's own tests can poll without waiting on the wall clock.
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    # Settle times, touched tasks and their timelines (cancel mode, end-of-run reconciliation).
    cancels: CancelLedger = field(default_factory=CancelLedger)
    # BEH-STATEFUL: how often each rule of the state machine ran.
    stateful_rules: dict[str, int] = field(default_factory=dict)
    # Set once a GET /v1/tasks/{id} answered 200 with a task status: the target offers GET.
    reads_tasks: bool = False
    # Ids the schema suite sent per corpus class (and near-miss kind), for the coverage report.
    id_classes: dict[str, int] = field(default_factory=dict)
    # Refusable tasks in a read-cancel-read sequence right now (the schema phase and the
    # scenarios run side by side): see engine.lanes.
    holds: TaskHolds = field(default_factory=TaskHolds)
    # The behaviour scenarios of this pytest run, once an item asked for them.
    lane: ScenarioLane | None = None
    # What the target did, by id class and task status: profile.json and recording.har.
    behaviour: BehaviourObserver = field(default_factory=lambda: BehaviourObserver(record=False))
    # Refusable tasks whose refusal the schema phase judges (its chains): set before the scenario
    # lane starts, so BEH-NOT-CANCELLABLE leaves them alone whatever the threads' timing.
    schema_judges_refusals: set[str] = field(default_factory=set)
    # What GET /v1/tasks listed (id -> status), when the run listed tasks: the preflight reads a
    # handed-over task only when the listing did not show it.
    listed: dict[str, str] = field(default_factory=dict)
    # Tasks handed over as IN_PROGRESS that read another status at preflight: (id, status read).
    moved_from_in_progress: list[tuple[str, str]] = field(default_factory=list)
    # The budget plan (engine.budget): every MUST's minimum reserved, breadth allotted.
    budget: Budget | None = None
    _randoms: dict[str, random.Random] = field(default_factory=dict)
    _randoms_lock: threading.Lock = field(default_factory=threading.Lock)

    def coverage(self) -> dict[str, Any]:
        return {
            "distinct_ids": self.target.distinct_delete_paths,
            "deletes": self.target.deletes_sent,
            "classes": dict(self.id_classes),
        }

    def behaviour_profile(self) -> dict[str, Any]:
        target = self.target
        return self.behaviour.profile(cancel_mode=self.cancels.mode(),
                                      backpressure_retries=target.backpressure_retries,
                                      relogins=len(target.token_lifetimes),
                                      token_lifetime=min(target.token_seconds, default=None),
                                      token_requests=min(target.token_lifetimes, default=None))

    def random_for(self, requirement_id: str) -> random.Random:
        """Randomness for one scenario's inputs, derived from the run's seed and the scenario: the
        scenarios may run side by side, and the same seed must still send the same ids."""
        with self._randoms_lock:
            if requirement_id not in self._randoms:
                self._randoms[requirement_id] = random.Random(f"{self.seed}:{requirement_id}")
            return self._randoms[requirement_id]

    def token_accepted(self) -> bool:
        """After a 401/403 mid-run: does a read-only request still get in? (a few probes per run)"""
        if self._token_probes >= MAX_TOKEN_PROBES:
            return True
        self._token_probes += 1
        exchange = self.target.send("GET", "/v1/tasks", purpose="token still accepted?", params={"pageSize": 1})
        return exchange.response is None or exchange.response.status not in (401, 403)

    def out_of_budget(self) -> bool:
        """The request budget is spent (a test hit it, or nothing is left to send)."""
        return self.budget_exhausted or self.target.remaining() == 0

    def side_by_side(self, items: Iterable[T], work: Callable[[T], R]) -> list[R]:
        """`work(item)` for independent items, up to --concurrency at a time; results in item order.

        For scenarios (which sit below the engine and cannot import it) whose steps on different
        tasks do not depend on each other: each item's own requests stay in order.
        """
        if not self.target.is_urgent():
            return fan_out(items, work, self.options.concurrency)

        def urgent_work(item: T) -> R:
            # The workers of an urgent thread (the scenario lane) are urgent too.
            self.target.urgent()
            return work(item)

        return fan_out(items, urgent_work, self.options.concurrency)

    def holding(self, task_ids: Iterable[str]) -> AbstractContextManager[None]:
        """Use these tasks alone for the block: whoever else needs one of them waits."""
        return self.holds.hold(task_ids)

    def scenarios(self, scenarios: Sequence[Requirement]) -> ScenarioLane:
        """The run's scenario lane (made once, from the scenarios this pytest run selected)."""
        if self.lane is None:
            self.lane = ScenarioLane(self, scenarios, self.target.halt)
        return self.lane

    def after_other_scenarios(self, requirement_id: str) -> None:
        """Wait for the scenarios running beside this one (none when they run one at a time)."""
        if self.lane is not None:
            self.lane.after_others(requirement_id)

    def after_scenario(self, requirement_id: str) -> None:
        """Wait for one scenario running beside this one to finish (one at a time: it has)."""
        if self.lane is not None:
            self.lane.after(requirement_id)

    def taken(self, requirement_id: str) -> None:
        """The scenario has taken every IN_PROGRESS task it will use: the next one may take its own
        while this one waits out its settle window."""
        if self.lane is not None:
            self.lane.taken(requirement_id)

    def end_background(self) -> None:
        """Stop and wait for the scenario lane, if the run ended before it did."""
        if self.lane is not None:
            self.lane.stop()
        self.target.halt(None)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def selected(self) -> set[str]:
        return {r.id for r in catalogue() if self.options.profile.includes(r.profile)}


@contextmanager
def open_session(options: RunOptions,
                 on_stopped: Callable[[SuiteSession, NoVerdict], None] | None = None,
                 on_interrupted: Callable[[SuiteSession], None] | None = None,
                 embedded: EmbeddedServer | None = None, draws: DrawnIds | None = None,
                 judges: bool = True) -> Iterator[SuiteSession]:
    """Start the embedded server when no target is given, log in, preflight, build the task pool.

    `judges` is False for a session that only serves fixtures (a plain pytest run that collected
    none of the suite's tests): nothing is judged, so no MUST needs a reserve and no budget plan
    is made; --max-requests still bounds every request.

    `on_stopped` sees the session when the target cannot be judged before the run starts (a
    refused token, an unreachable host), and `on_interrupted` when Ctrl-C comes before it starts,
    so the caller can keep NO VERDICT reports of what was seen.
    `embedded` and `draws` are helper processes the caller started early (the command line);
    they stay the caller's to stop. `draws` drew with `options.seed`, so that must be set.
    """
    options.validate()
    if draws is not None and options.seed is None:
        raise ValueError("ids drawn ahead need the run's seed in the options")
    # Raised once, up front: Hypothesis warns when a test changes the limit while it runs.
    ensure_recursion_headroom()
    # Read once, before any request goes out: a bad document ends the run with one line
    # (ContractError, exit 2) and nothing sent.
    contract = run_contract(options.spec)
    server: Any = None
    try:
        if options.base_url is None:
            if embedded is not None:
                server = embedded.ready()
                state = server.state
            else:
                from conformance.reference import ReferenceConfig, ReferenceServer

                try:
                    config = ReferenceConfig(defects=frozenset(options.defects))
                    if options.reference_settle_seconds is not None:
                        config = dataclasses.replace(config, settle_seconds=options.reference_settle_seconds)
                except ValueError as exc:
                    raise OptionsError(f"--defect: {exc}") from None
                server = ReferenceServer(config).start()
                state = server.state_document()
            # In a thread or a child process, the server describes itself in one state document.
            base_url = str(state["base_url"])
            username: str | None = state["username"]
            password: str | None = state["password"]
            token = None
            tasks = {s: list(ids) for s, ids in state["tasks"].items()}
        else:
            base_url = options.base_url
            username, password, token = options.username, options.password, options.token
            tasks = options.tasks
        target = Target(
            TargetConfig(
                base_url=base_url,
                token=token,
                username=username,
                password=password,
                verify=options.verify,
                timeout=options.timeout,
                rate_limit=options.rate_limit,
                max_requests=options.max_requests,
                concurrency=options.concurrency,
            ),
            contract=contract,
        )
        session = SuiteSession(
            options=options,
            target=target,
            recorder=Recorder(CheckContext(fragment=contract, strict_urls=options.strict_urls)),
            pool=TaskPool.from_mapping(tasks),
            seed=options.seed if options.seed is not None else random.randrange(2**32),
            embedded=server is not None,
            provision=server,
            draws=draws,
            contract=contract,
            settle_timeout=(options.settle_timeout if options.settle_timeout is not None
                            else EMBEDDED_SETTLE_TIMEOUT if server is not None else DEFAULT_SETTLE_TIMEOUT),
        )
        session.pool.allow_cancel_discovered = options.allow_cancel_discovered
        # Before the first request: the preflight's reads already tell which status each task has.
        session.behaviour = BehaviourObserver(tasks, cancel_method=contract.method, secrets=target.secrets,
                                              record=options.record)
        target.on_exchange = session.behaviour.observe
        session.recorder.explain = lambda reason: explain_not_run(session, reason)
        session.recorder.budget_exhausted = session.out_of_budget
        session.recorder.token_accepted = session.token_accepted
        # Hints name the options as the user spells them (--sddc-username under pytest).
        target.flag_prefix = options.flag_prefix
        target.on_login = lambda n: set_note(
            session, "tokens:", f"tokens: {len(target.token_lifetimes)} expired mid-run and the suite logged in "
            f"again ({n} logins in all, each a request of the budget); each token answered at least "
            f"{min(target.token_lifetimes, default=0)} requests")
        target.on_backpressure = lambda n: set_note(
            session, "backpressure:", f"backpressure: {n} retries (the target answered 429, or 503 with "
            "Retry-After; each was waited out, re-sent and never judged)")
        # Up front, before any request: a budget that cannot hold every MUST's minimum is refused
        # (exit 2) with the number needed, instead of MUSTs found unjudged at the end.
        if judges:
            session.budget = Budget(plan(budget_facts(session)), target.remaining)
        if not options.dry_run:
            try:
                target.login()
                # Before anything is judged: the user's mistakes (a refused token, stale task ids)
                # end the run here with their own exit code instead of becoming findings.
                has_listing = preflight(session, check_tasks=False)
                if options.discover:
                    discover(session)
                elif options.profile.includes(Profile.SCHEMA):
                    # Fuzzing must not name a real task it was not handed: learn every id first.
                    discover(session, use=False)
                if server is None and session.pool.given:
                    # After the listing: a task it showed needs no GET of its own.
                    _check_given_tasks(session, has_listing)
                # Again with what the preflight and the listing found (tasks moved or discovered,
                # the requests they really took): still before the first judged request.
                if judges:
                    session.budget = Budget(plan(budget_facts(session)), target.remaining)
                if session.budget is None or session.budget.admit("product details"):
                    # For the reports only: it decides nothing, so it comes last in the plan.
                    session.product = probe_product(session)
            except BudgetExhausted:
                target.close()
                # The user's setting, not the target's fault: nothing could be judged at all.
                raise OptionsError(
                    f"--max-requests {options.max_requests} is spent before the first judged request (logging in, "
                    f"the preflight and listing tasks took {target.requests_sent}); allow more"
                ) from None
            except BaseException as exc:
                # A refused token, an unreachable host, or Ctrl-C during the preflight: the caller
                # keeps NO VERDICT reports of what was seen (the README promises them).
                if isinstance(exc, NoVerdict) and on_stopped is not None:
                    on_stopped(session, exc)
                elif isinstance(exc, Interrupted | KeyboardInterrupt) and on_interrupted is not None:
                    on_interrupted(session)
                target.close()
                raise
        try:
            yield session
        finally:
            session.end_background()
            target.close()
    finally:
        # An embedded server handed in is its giver's to stop.
        if server is not None and server is not embedded:
            server.stop()


def budget_facts(session: SuiteSession) -> Facts:
    """What the budget plan needs to know, from the options, the task pool and the target.

    Before the first request the login and the preflight are estimated (one listing page, a GET
    of each handed-over task); once they ran, what they really took is counted instead.
    """
    from conformance.engine.generation import corpus_for, near_misses

    options = session.options
    target = session.target
    pool = session.pool
    schema = options.profile.includes(Profile.SCHEMA)
    sent = target.requests_sent
    if sent:
        overhead = sent
    else:
        logs_in = bool(target.config.username and target.config.password and not target.config.token)
        listing = 1 if (schema or options.discover) else 0
        # A run that lists tasks finds the handed-over ones there; otherwise it reads each.
        handed = sum(len(ids) for ids in pool.given.values()) if session.provision is None and not listing else 0
        overhead = int(logs_in) + 1 + handed + listing
    refusable = pool.non_cancellable()
    in_progress = UNLIMITED if session.provision is not None else len(pool.given.get("IN_PROGRESS", []))
    if pool.allow_cancel_discovered:
        in_progress += len(pool.discovered.get("IN_PROGRESS", []))
    known = pool.known_ids()
    misses = near_misses(refusable, known)
    return Facts(
        budget=options.max_requests, schema=schema, behavior=options.profile.includes(Profile.BEHAVIOR),
        overhead=overhead, has_credentials=target.config.has_credentials, in_progress=in_progress,
        refusable=len(refusable), race_width=max(2, options.concurrency), settle_timeout=session.settle_timeout,
        corpus=len(corpus_for(known)), near_misses=len(misses), generated=options.max_examples,
        stateful_examples=4 if session.provision is not None else 3,
    )



def set_note(session: SuiteSession, prefix: str, text: str) -> None:
    """Replace the note starting with `prefix` (a running count), or add it."""
    session.notes[:] = [n for n in session.notes if not n.startswith(prefix)]
    session.notes.append(text)


def discover(session: SuiteSession, max_pages: int = 20, *, use: bool = True) -> None:
    """List tasks read-only through GET /v1/tasks.

    With `use`, the tasks join the pool (by status); without, their ids are only kept out of
    the generated ones.
    """
    flag = "--discover" if use else "listing existing tasks"
    try:
        _list_pages(session, flag, max_pages, use)
    finally:
        # IN_PROGRESS tasks that say isCancellable: false only refuse a cancel: they go last, so
        # the scenarios that need a cancel to succeed take a cancellable one first.
        in_progress = session.pool.discovered.get("IN_PROGRESS")
        if in_progress:
            in_progress.sort(key=lambda task_id: task_id in session.pool.refusing)


def _list_pages(session: SuiteSession, flag: str, max_pages: int, use: bool) -> None:
    page = 0
    while page < max_pages:
        exchange = session.target.send(
            "GET", "/v1/tasks", purpose="discover tasks", params={"pageNumber": page, "pageSize": 100}
        )
        response = exchange.response
        if response is None or response.status != 200 or not response.json.ok:
            status = response.status if response is not None else exchange.error
            session.note(f"{flag}: GET /v1/tasks answered {status}; generated ids were checked only against "
                         "the tasks handed over")
            return
        document = response.json.value
        elements = document.get("elements") if isinstance(document, dict) else None
        if not isinstance(elements, list):
            session.note(f"{flag}: GET /v1/tasks did not answer a page of tasks")
            return
        for task in elements:
            if not isinstance(task, dict) or not isinstance(task.get("id"), str):
                continue
            session.pool.existing.add(task["id"])
            status = normalise_status(task.get("status"))
            if status in STATUSES:
                session.listed[task["id"]] = status
            if use and status in STATUSES:
                session.pool.discovered.setdefault(status, []).append(task["id"])
                if status == "IN_PROGRESS" and task.get("isCancellable") is False:
                    session.pool.refusing.add(task["id"])
        meta = document.get("pageMetadata") or {}
        total_pages = meta.get("totalPages") if isinstance(meta, dict) else None
        page += 1
        if not elements or not isinstance(total_pages, int) or page >= total_pages:
            return


def probe_product(session: SuiteSession) -> dict[str, str] | None:
    """The product version, when the target lists its SDDC Manager (one read-only request)."""
    exchange = session.target.send("GET", "/v1/sddc-managers", purpose="product details")
    response = exchange.response
    if response is None or response.status != 200 or not response.json.ok:
        return None
    document = response.json.value
    elements = document.get("elements") if isinstance(document, dict) else None
    if not isinstance(elements, list) or not elements or not isinstance(elements[0], dict):
        return None
    manager = elements[0]
    product = {"name": "SDDC Manager"}
    for key in ("version", "fqdn"):
        value = manager.get(key)
        # Untrusted text ends up in reports: keep it short and plain.
        if isinstance(value, str) and value:
            product[key] = value[:120]
    return product if "version" in product else None


def preflight(session: SuiteSession, *, check_tasks: bool = True) -> bool:
    """Check the credentials are accepted and every handed-over task exists; nothing is judged.

    Only read-only requests (GET), except when the target has no GET at all: then one DELETE of
    a fresh random UUID (which names no task) shows whether the token is accepted. Returns
    whether the target lists tasks (GET /v1/tasks answered 200).
    """
    target = session.target
    base = target.base_url
    status = _answered(lambda: target.send("GET", "/v1/tasks", purpose="preflight: credentials accepted",
                                            params={"pageSize": 1}), base)
    has_listing = status == 200
    if status not in (401, 403) and not has_listing and target.config.has_credentials:
        # No listing: a random unknown id answers 404 when the token is good, 401/403 when not.
        probe_id = str(uuid.uuid4())
        status = _answered(lambda: target.get_task(probe_id, purpose="preflight: credentials accepted"), base)
        if status in (404, 405, 501):
            status = _answered(lambda: target.cancel(encode_id(probe_id),
                                                     purpose="preflight: credentials accepted (no GET)",
                                                     task_id=probe_id), base)
    if status in (401, 403) and target.config.has_credentials:
        raise AuthenticationFailed(_refused(session, status))
    if check_tasks and session.pool.given:
        _check_given_tasks(session, has_listing)
    return has_listing


def _answered(send: Callable[[], Exchange], base: str) -> int:
    """The status of a preflight request (see `_answer`)."""
    response = _answer(send, base).response
    assert response is not None  # _answer raised otherwise
    return response.status


def _answer(send: Callable[[], Exchange], base: str) -> Exchange:
    """A preflight request's answered exchange, tried up to PREFLIGHT_TRIES times before the target
    counts as unreachable.

    A target that drops one request in two is still judged (its dropped answers are SRV-ANSWERS
    findings); only a target that answers none of the tries gives no verdict.
    """
    exchange = send()
    for _ in range(PREFLIGHT_TRIES - 1):
        if exchange.response is not None:
            break
        exchange = send()
    if exchange.response is None:
        raise TargetUnreachable(f"cannot reach {base}: {clean_line(str(exchange.error or 'no answer'))}")
    return exchange


def _refused(session: SuiteSession, status: int) -> str:
    config = session.target.config
    if config.token:
        return (f"the target refused the token ({status}): get a fresh one (POST /v1/tokens) and set "
                "SDDC_TOKEN; nothing was judged")
    return (f"the target refused the token it issued to user {config.username!r} ({status}): check the "
            "user's role; nothing was judged")


def _check_given_tasks(session: SuiteSession, has_listing: bool) -> None:
    """Every handed-over task exists (listed, or GET): unknown ids stop the run (exit 2); moved ones
    change status."""
    missing: list[str] = []
    moved: list[tuple[str, str, str]] = []
    answered_200 = False
    handed = [(stated, task_id) for stated, ids in session.pool.given.items() for task_id in ids]
    # A task the run's listing showed exists, in the status it listed: a GET would decide nothing
    # more. Only the others are read (an absent one may lie beyond the pages the run reads).
    for stated, task_id in handed:
        real = session.listed.get(task_id)
        if real is not None:
            answered_200 = True
            if real != stated:
                moved.append((task_id, stated, real))
    handed = [(stated, task_id) for stated, task_id in handed if task_id not in session.listed]

    def get(item: tuple[str, str]) -> Exchange:
        return _answer(lambda: session.target.get_task(item[1], purpose="preflight: handed-over task exists"),
                       session.target.base_url)

    # The first read alone tells a target without GET (405/501) before any more are sent; the
    # rest are independent reads and go out side by side.
    exchanges = [get(handed[0])] if handed else []
    if exchanges and exchanges[0].response is not None and exchanges[0].response.status in (405, 501):
        session.note("the target has no GET /v1/tasks/{id}: the handed-over tasks the listing did not show "
                     "were not checked")
        handed, exchanges = [], []
    exchanges += session.side_by_side(handed[1:], get)
    for (stated, task_id), exchange in zip(handed, exchanges, strict=True):
        assert exchange.response is not None  # _answer raised otherwise
        status = exchange.response.status
        if status == 404:
            missing.append(task_id)
            continue
        if status != 200 or not exchange.response.json.ok:
            continue
        answered_200 = True
        document = exchange.response.json.value
        real = normalise_status(document.get("status")) if isinstance(document, dict) else None
        if real in STATUSES and real != stated:
            moved.append((task_id, stated, real))
    if missing and not answered_200 and not has_listing:
        # Every GET answered 404, the listing too: the target has no GET route, not stale tasks.
        session.note("the target answers 404 to every GET: the handed-over tasks could not be checked")
        return
    if missing:
        shown = ", ".join(clean_line(i) for i in missing[:STALE_IDS_SHOWN])
        more = len(missing) - STALE_IDS_SHOWN
        raise StaleTasks(
            f"the target does not know {len(missing)} handed-over task id{'s' if len(missing) != 1 else ''} "
            f"(GET answered 404): {shown}{f' and {more} more' if more > 0 else ''}; hand over current "
            "ids (nothing was sent to cancel)"
        )
    for task_id, stated, real in moved:
        session.pool.given[stated].remove(task_id)
        if real == "IN_PROGRESS":
            # Handed over as something that must refuse a cancel: the user never agreed to have it
            # cancelled, so it is only kept out of the generated ids, never used.
            session.pool.existing.add(task_id)
            session.note(f"task {clean_line(task_id)} was handed over as {stated} but reads {real}; not used "
                         f"(only --task IN_PROGRESS=<id> tasks are ever cancelled)")
            continue
        session.pool.given.setdefault(real, []).append(task_id)
        if stated == "IN_PROGRESS":
            session.moved_from_in_progress.append((task_id, real))
        session.note(f"task {clean_line(task_id)} was handed over as {stated} but reads {real}; used as {real}")


def explain_not_run(session: SuiteSession, reason: str) -> str:
    """A NOT RUN reason that states the real cause: budget, tasks used up, or the option to pass."""
    if session.out_of_budget():
        return f"request budget exhausted ({session.options.max_requests} requests): {reason}"
    if "no IN_PROGRESS task given" in reason:
        given = len(session.pool.given.get("IN_PROGRESS", []))
        if given:
            return (f"used up: {given} IN_PROGRESS task{'s' if given != 1 else ''} given, all used by "
                    "earlier requirements; hand over more")
        moved = session.moved_from_in_progress
        if moved and session.provision is None:
            # They were handed over, but are no longer IN_PROGRESS: say so, not "none given".
            shown = ", ".join(f"{clean_line(task_id)} read {real}" for task_id, real in moved[:3])
            one = len(moved) == 1
            return (f"the IN_PROGRESS task{'' if one else 's'} handed over {'was' if one else 'were'} no longer "
                    f"IN_PROGRESS at preflight ({shown}{f' and {len(moved) - 3} more' if len(moved) > 3 else ''}): "
                    f"hand over {'a fresh one' if one else 'fresh ones'} "
                    f"({session.options.flag_prefix}task IN_PROGRESS=<id>)")
        if session.provision is None:
            # The scenarios name the CLI option; under pytest the option is --sddc-task.
            return reason.replace("--task ", f"{session.options.flag_prefix}task ")
    if "no task in a non-cancellable status given" in reason:
        return reason.replace("--task ", f"{session.options.flag_prefix}task ").replace(
            "--discover", f"{session.options.flag_prefix}discover")
    return reason

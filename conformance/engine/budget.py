"""The budget plan: every MUST's minimum evidence first, then breadth by priority.

Before the first request the run knows what each MUST requirement needs and what that costs on
this target (`Facts`: the profile, the tasks handed over, whether it logs in, the settle window,
what the preflight reads). `plan()` reserves that minimum for every MUST, refuses a budget that
cannot hold it (`BudgetTooSmall`, exit 2, with the number needed), and spreads what is left over
the breadth categories in `BREADTH`, in that order. A new category is one more `Category` row.

While the run goes, `Budget` lets each breadth category send its allotment, so the schema phase
(side by side with the scenarios) never spends what a MUST's reserve holds; what is left once
every MUST scenario has ended goes to breadth too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from conformance.errors import OptionsError

# What the scenarios send, from the scenarios themselves: the settle backoff
# (await_cancelled), the state machine's steps per example.
from conformance.requirements.scenarios import SETTLE_FIRST_DELAY, SETTLE_MAX_DELAY, SETTLE_MAX_READS
from conformance.requirements.stateful import STEPS as STATEFUL_STEPS

# BEH-STATEFUL: fresh IN_PROGRESS tasks and known tasks each example takes (stateful.build_machine).
STATEFUL_TASKS = 3
STATEFUL_KNOWN = 3
# BEH-UNKNOWN-404's own cancels of random unknown ids; AUTH-REQUIRED's two unauthorised cancels.
UNKNOWN_CANCELS = 3
AUTH_CANCELS = 2
# Stands for "as many as asked": the embedded reference server creates IN_PROGRESS tasks.
UNLIMITED = 10**6


class BudgetTooSmall(OptionsError):
    """--max-requests cannot hold the minimum evidence of every MUST requirement on this target."""


def settle_reads(settle_timeout: float) -> int:
    """The most reads one settle window takes: one at once, then with backoff until it closes."""
    reads, elapsed, delay = 1, 0.0, SETTLE_FIRST_DELAY
    while reads < SETTLE_MAX_READS and elapsed < settle_timeout:
        elapsed += min(delay, settle_timeout - elapsed)
        delay = min(delay * 2, SETTLE_MAX_DELAY)
        reads += 1
    return reads


@dataclass(frozen=True)
class Facts:
    """What the run knows before its first request, and what the requests it must send cost."""

    budget: int | None
    schema: bool
    behavior: bool
    # Requests already spent or certain before anything is judged (login, preflight, listing).
    overhead: int
    has_credentials: bool
    # IN_PROGRESS tasks the run may cancel (UNLIMITED where the target creates them).
    in_progress: int
    # Known tasks in statuses that must refuse a cancel.
    refusable: int
    # Cancels BEH-RACE sends at one moment: max(2, --concurrency).
    race_width: int
    settle_timeout: float
    # The schema phase's breadth, unbounded: corpus ids, near-miss ids (all tasks together),
    # generated ids (--max-examples), state-machine examples.
    corpus: int = 0
    near_misses: int = 0
    generated: int = 0
    stateful_examples: int = 3

    @property
    def settle(self) -> int:
        return settle_reads(self.settle_timeout)

    def tasks_for(self, order: int, wanted: int = 1) -> int:
        """IN_PROGRESS tasks left for the `order`-th taker (BEH-CANCEL 0, BEH-RACE 1, BEH-STATEFUL 2)."""
        return max(0, min(wanted, self.in_progress - order))


def stateful_example(facts: Facts) -> int:
    """One state-machine example: its fresh tasks' reads, the known tasks' re-reads, the steps, the
    bystander reads, the teardown's two cancels, the final reads and waits, and the end-of-run
    re-reads of its tasks."""
    tasks = facts.tasks_for(2, STATEFUL_TASKS)
    known = min(STATEFUL_KNOWN, facts.refusable)
    bystanders = tasks * (tasks - 1) // 2
    return (tasks + known + STATEFUL_STEPS + bystanders + 2 + (known + 1) + tasks * facts.settle + tasks)


# -- the MUST minimum ---------------------------------------------------------------------------
Need = Callable[[Facts], tuple[int, str]]


def _response_checks(facts: Facts) -> tuple[int, str]:
    if facts.behavior:
        return 0, "judged on every DELETE answer (the scenarios send some)"
    return 1, "judged on every DELETE answer: at least one corpus id"


def _empty_200(facts: Facts) -> tuple[int, str]:
    if facts.behavior and facts.in_progress:
        return 0, "judged on BEH-CANCEL's 200"
    if not facts.behavior:
        return 0, "NOT RUN: this profile never cancels, so no 200 comes back"
    return 0, "NOT RUN: no IN_PROGRESS task, so no 200 comes back"


def _cancel(facts: Facts) -> tuple[int, str]:
    if not facts.tasks_for(0):
        return 0, "NOT RUN: no IN_PROGRESS task"
    return 2 + facts.settle, f"GET, DELETE, up to {facts.settle} settle reads"


def _recancel(facts: Facts) -> tuple[int, str]:
    if not facts.tasks_for(0):
        return 0, "NOT RUN: no IN_PROGRESS task"
    return 2, "DELETE of BEH-CANCEL's task, GET"


def _not_cancellable(facts: Facts) -> tuple[int, str]:
    if not facts.refusable:
        return 0, "NOT RUN: no task in a non-cancellable status"
    return 2 * facts.refusable, f"DELETE and GET of each of {facts.refusable} refusable tasks"


def _race(facts: Facts) -> tuple[int, str]:
    if not facts.tasks_for(1):
        return 0, "NOT RUN: no second IN_PROGRESS task"
    return (2 + facts.race_width + facts.settle,
            f"GET, {facts.race_width} DELETEs at once, up to {facts.settle} settle reads")


def _auth(facts: Facts) -> tuple[int, str]:
    if not facts.has_credentials:
        return 0, "NOT RUN: the run has no credentials"
    return AUTH_CANCELS, "DELETE without a token, with a forged one"


def _stateful(facts: Facts) -> tuple[int, str]:
    if not facts.tasks_for(2):
        return 0, "NOT RUN: no third IN_PROGRESS task"
    # Its GET probe, one example, and the end-of-run re-read of every other task the run touched.
    rereads = facts.refusable + facts.tasks_for(0) + facts.tasks_for(1)
    return (1 + stateful_example(facts) + rereads,
            f"one example of {STATEFUL_STEPS} steps, then {rereads} end-of-run re-reads")


# Every MUST requirement, with what its minimum evidence costs. Checks of response answers ride
# on the DELETEs that other requirements send.
MUST_NEEDS: dict[str, tuple[str, Need]] = {
    "SRV-ANSWERS": ("schema", _response_checks),
    "SCH-STATUS": ("schema", lambda f: (0, "judged on every DELETE answer")),
    "SCH-200-EMPTY": ("schema", _empty_200),
    "SCH-ERROR-BODY": ("schema", lambda f: (0, "judged on every 404/409/500 answer")),
    "SRV-NO-5XX": ("schema", lambda f: (0, "judged on every DELETE answer")),
    "BEH-CANCEL": ("behavior", _cancel),
    "BEH-RECANCEL": ("behavior", _recancel),
    "BEH-NOT-CANCELLABLE": ("behavior", _not_cancellable),
    "BEH-UNKNOWN-404": ("behavior", lambda f: (UNKNOWN_CANCELS, f"DELETE of {UNKNOWN_CANCELS} random UUIDs")),
    "BEH-RACE": ("behavior", _race),
    "AUTH-REQUIRED": ("behavior", _auth),
    "BEH-STATEFUL": ("behavior", _stateful),
}


# -- breadth ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Category:
    """One kind of breadth: how many units the run would send unbounded, what n units cost."""

    name: str
    unit: str
    wanted: Callable[[Facts], int]
    cost: Callable[[Facts, int], int]


def _near_miss_cost(facts: Facts, ids: int) -> int:
    # The ids, and a read of their task after each group of them: at most two groups a task, and
    # the families go to the tasks in turn, so n ids touch at most n tasks.
    return ids + 2 * min(ids, facts.refusable)


# In priority order: under --profile schema the known tasks' refusals; then identity defects (an
# id that reaches another task is the worst a target can do, and near-misses are the only
# requests that find it), then the deterministic corpus (every URL and Unicode class once), then
# Hypothesis' generated ids, then more examples of the state machine, then the product details
# (reports only: they decide nothing).
BREADTH: tuple[Category, ...] = (
    # Under --profile schema the refusals of known tasks are breadth (BEH-NOT-CANCELLABLE is not
    # judged); under full they are that MUST's reserve. Either way the near-misses' baseline.
    Category("known refusable tasks", "tasks (a refused cancel, then a read)",
             lambda f: f.refusable if f.schema and not f.behavior else 0, lambda f, n: 2 * n),
    Category("near-miss ids", "ids (families in priority order)", lambda f: f.near_misses if f.schema else 0,
             _near_miss_cost),
    Category("id corpus", "ids", lambda f: f.corpus if f.schema else 0, lambda f, n: n),
    Category("generated ids", "ids", lambda f: f.generated if f.schema else 0, lambda f, n: n),
    Category("state-machine examples", "examples beyond the first",
             lambda f: max(0, f.stateful_examples - 1) if f.behavior and f.tasks_for(2) else 0,
             lambda f, n: n * stateful_example(f)),
    Category("product details", "GET /v1/sddc-managers", lambda f: 1, lambda f, n: n),
)


@dataclass(frozen=True)
class Plan:
    facts: Facts
    # requirement id -> (requests reserved, what they are)
    reserved: dict[str, tuple[int, str]]
    # category name -> units allotted (of `wanted`)
    allotted: dict[str, int]
    wanted: dict[str, int]
    costs: dict[str, int]

    @property
    def minimum(self) -> int:
        """Requests the run needs to judge every MUST it has the inputs for."""
        return self.facts.overhead + sum(n for n, _ in self.reserved.values())

    def units(self, category: str) -> int:
        return self.allotted.get(category, 0)

    def lines(self) -> list[str]:
        """The plan as --dry-run prints it."""
        budget = "unlimited" if self.facts.budget is None else str(self.facts.budget)
        out = [f"budget plan: {budget} requests; {self.facts.overhead} before the first judged request "
               f"(login, preflight, listing); {self.minimum} to judge every MUST"]
        for rid, (n, what) in self.reserved.items():
            out.append(f"  reserved {n:>4}  {rid:<22} {what}")
        for category in BREADTH:
            name = category.name
            if not self.wanted.get(name):
                continue
            out.append(f"  allotted {self.costs[name]:>4}  {name:<22} {self.allotted[name]} of "
                       f"{self.wanted[name]} {category.unit}")
        return out


def plan(facts: Facts) -> Plan:
    """Reserve every MUST's minimum, refuse a budget below it, then allot breadth in BREADTH order."""
    reserved: dict[str, tuple[int, str]] = {}
    for rid, (profile, need) in MUST_NEEDS.items():
        if (profile == "schema" and (facts.schema or rid == "SRV-ANSWERS")) or (profile == "behavior"
                                                                                 and facts.behavior):
            reserved[rid] = need(facts)
    draft = Plan(facts, reserved, {}, {}, {})
    if facts.budget is not None and facts.budget < draft.minimum:
        raise BudgetTooSmall(
            f"--max-requests {facts.budget} is below the {draft.minimum} requests needed to judge every MUST "
            f"requirement on this target ({facts.overhead} to log in and check the tasks, "
            f"{draft.minimum - facts.overhead} of minimum evidence); allow at least {draft.minimum} "
            "(--dry-run shows the plan)")
    spare = None if facts.budget is None else facts.budget - draft.minimum
    allotted: dict[str, int] = {}
    wanted: dict[str, int] = {}
    costs: dict[str, int] = {}
    for category in BREADTH:
        want = category.wanted(facts)
        n = want
        if spare is not None:
            # Costs grow with n: the largest n that fits.
            while n > 0 and category.cost(facts, n) > spare:
                n -= 1
            spare -= category.cost(facts, n)
        wanted[category.name] = want
        allotted[category.name] = n
        costs[category.name] = category.cost(facts, n)
    if reserved.get("SRV-ANSWERS", (0, ""))[0] and allotted["id corpus"] < wanted["id corpus"]:
        # No scenario sends a DELETE: the response checks' reserve is spent as one more corpus id.
        allotted["id corpus"] += 1
    return Plan(facts, reserved, allotted, wanted, costs)


@dataclass
class Budget:
    """The plan while the run goes: each breadth category sends its allotment, and more only once
    every MUST scenario has ended.

    A reserve is not lent to breadth while any scenario may still need it: the schema phase runs
    beside the scenarios, and a loan taken while a scenario's requests are still to come could
    starve it. Once every scenario with a reserve has ended (`release`), nothing judged is left
    to send, and what the budget still holds (settle reads a synchronous target never needed)
    goes to breadth, in its categories' order as they ask.
    """

    plan: Plan
    remaining: Callable[[], int | None] = lambda: None
    _open: set[str] = field(default_factory=set)
    _left: dict[str, int] = field(default_factory=dict)
    _grown: dict[str, int] = field(default_factory=dict)
    # Breadth units not sent because the allotment was spent (for the reports' note).
    held_back: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._open = {rid for rid, (n, _) in self.plan.reserved.items() if n}
        self._left = dict(self.plan.allotted)

    def units(self, category: str) -> int:
        return self.plan.units(category)

    def admit(self, category: str) -> bool:
        """Whether one more unit of `category` may go out (and count it if so)."""
        with self._lock:
            if self._left.get(category, 0) > 0:
                self._left[category] -= 1
                return True
            left = self.remaining()
            grown = self._grown.get(category, 0)
            if (not self._open and left is not None and left > 0
                    and grown < self.plan.wanted.get(category, 0) - self.plan.units(category)):
                self._grown[category] = grown + 1
                return True
            self.held_back[category] = self.held_back.get(category, 0) + 1
            return False

    def release(self, requirement_id: str) -> None:
        """The requirement's scenario ended (judged, NOT RUN or stopped): it sends nothing more."""
        with self._lock:
            self._open.discard(requirement_id)

    def stateful_examples(self) -> int:
        """BEH-STATEFUL's examples: the one its reserve holds, and those the plan allotted."""
        return 1 + self.units("state-machine examples")


__all__ = ["BREADTH", "MUST_NEEDS", "Budget", "BudgetTooSmall", "Category", "Facts", "Plan", "plan", "settle_reads"]

"""One run's live state, shared by the CLI, the pytest plugin and the suite's tests.

There is no module-global session: the runner hands its session to pytest through
`config.stash` (see `engine.runner.SESSION_KEY`), and the fixtures read it from there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from conformance.bodies import ensure_recursion_headroom
from conformance.engine.recorder import Recorder
from conformance.engine.target import Target, TargetConfig
from conformance.errors import OptionsError, TargetError
from conformance.model import Profile
from conformance.options import RunOptions
from conformance.requirements import catalogue
from conformance.requirements.checks import CheckContext
from conformance.tasks import STATUSES, TaskPool, normalise_status


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
    provision: Any = None
    # Ids the schema suite sent per corpus class (and near-miss kind), for the coverage report.
    id_classes: dict[str, int] = field(default_factory=dict)

    def coverage(self) -> dict[str, Any]:
        return {
            "distinct_ids": self.target.distinct_delete_paths,
            "deletes": self.target.deletes_sent,
            "classes": dict(self.id_classes),
        }

    @cached_property
    def rng(self) -> random.Random:
        """Randomness for scenario inputs, derived from the run's seed."""
        return random.Random(self.seed)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def selected(self) -> set[str]:
        return {r.id for r in catalogue() if self.options.profile.includes(r.profile)}


@contextmanager
def open_session(options: RunOptions) -> Iterator[SuiteSession]:
    """Start the embedded server when no target is given, log in, and build the task pool."""
    options.validate()
    # Raised once, up front: Hypothesis warns when a test changes the limit while it runs.
    ensure_recursion_headroom()
    server = None
    try:
        if options.base_url is None:
            from conformance.reference import ReferenceConfig, ReferenceServer

            try:
                config = ReferenceConfig(defects=frozenset(options.defects))
            except ValueError as exc:
                raise OptionsError(f"--defect: {exc}") from None
            server = ReferenceServer(config).start()
            base_url = server.base_url
            username: str | None = server.config.username
            password: str | None = server.config.password
            token = None
            tasks = {s: list(ids) for s, ids in server.state_document()["tasks"].items()}
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
            )
        )
        session = SuiteSession(
            options=options,
            target=target,
            recorder=Recorder(CheckContext.default(strict_urls=options.strict_urls)),
            pool=TaskPool.from_mapping(tasks),
            seed=options.seed if options.seed is not None else random.randrange(2**32),
            embedded=server is not None,
            provision=server,
        )
        session.pool.allow_cancel_discovered = options.allow_cancel_discovered
        target.on_backpressure = lambda n: set_note(
            session, "backpressure:", f"backpressure: {n} retries (the target answered 429, or 503 with "
            "Retry-After; each was waited out, re-sent and never judged)")
        if not options.dry_run:
            target.login()
            session.product = probe_product(session)
            if options.discover:
                discover(session)
            elif options.profile.includes(Profile.SCHEMA):
                # Fuzzing must not name a real task it was not handed: learn every id first.
                discover(session, use=False)
        try:
            yield session
        finally:
            target.close()
    finally:
        if server is not None:
            server.stop()


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
            if use and status in STATUSES:
                session.pool.discovered.setdefault(status, []).append(task["id"])
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

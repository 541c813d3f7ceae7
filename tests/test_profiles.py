"""Profiles, --certify and NOT RUN reasons, over real HTTP against the reference server."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.model import Outcome
from conformance.options import Profile, RunOptions
from conformance.outcome import RunResult
from conformance.reference import ReferenceConfig, ReferenceServer

PASSWORD = "profile-pw-123"


@pytest.fixture
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(ReferenceConfig(password=PASSWORD)) as running:
        yield running


def run(server: ReferenceServer, **kwargs: object) -> RunResult:
    settings: dict[str, object] = {"seed": 2, "max_examples": 20, **kwargs}
    options = RunOptions(base_url=server.base_url, username=server.config.username, password=PASSWORD,
                         **settings)  # type: ignore[arg-type]
    with open_session(options) as session:
        return execute(session)


def outcomes(result: RunResult) -> dict[str, Outcome]:
    return {r.requirement.id: r.outcome for r in result.results}


def test_behaviour_without_tasks_is_not_run_with_an_actionable_reason(server: ReferenceServer) -> None:
    result = run(server, profile=Profile.BEHAVIOR)

    by_id = {r.requirement.id: r for r in result.results}
    for rid in ("BEH-CANCEL", "BEH-RACE", "BEH-STATEFUL", "BEH-RECANCEL"):
        assert by_id[rid].outcome is Outcome.NOT_RUN
        assert "--task IN_PROGRESS=<id>" in by_id[rid].reason
    assert by_id["BEH-NOT-CANCELLABLE"].outcome is Outcome.NOT_RUN
    # Needs no task: unknown ids and auth still run.
    assert by_id["BEH-UNKNOWN-404"].outcome is Outcome.PASS
    assert by_id["AUTH-REQUIRED"].outcome is Outcome.PASS
    assert all(o is Outcome.SKIPPED for rid, o in outcomes(result).items() if rid.startswith(("SCH-", "SRV-")))
    assert result.conformant  # NOT RUN is never a failure...


def test_certify_refuses_what_was_not_exercised(server: ReferenceServer) -> None:
    result = run(server, profile=Profile.BEHAVIOR, certify=True)

    assert not result.conformant  # ...but certification needs every MUST proven.
    assert {r.requirement.id for r in result.unproven_must} >= {"BEH-CANCEL", "SCH-STATUS"}


def test_discover_finds_non_cancellable_tasks(server: ReferenceServer) -> None:
    result = run(server, profile=Profile.BEHAVIOR, discover=True)

    by_id = {r.requirement.id: r for r in result.results}
    assert by_id["BEH-NOT-CANCELLABLE"].outcome is Outcome.PASS
    assert by_id["BEH-NOT-CANCELLABLE"].evaluations == 12  # two tasks in each of six statuses
    # Discovered IN_PROGRESS tasks are not cancelled without --allow-cancel-discovered.
    assert by_id["BEH-CANCEL"].outcome is Outcome.NOT_RUN
    assert server.store.ids_by_status()["CANCELLED"] == server.state_document()["tasks"]["CANCELLED"]


@pytest.mark.slow
def test_allow_cancel_discovered_exercises_everything(server: ReferenceServer) -> None:
    result = run(server, discover=True, allow_cancel_discovered=True, certify=True)

    assert result.conformant, [(r.requirement.id, r.reason) for r in result.unproven_must]


def test_schema_profile_cancels_nothing(server: ReferenceServer) -> None:
    before = server.store.ids_by_status()
    result = run(server, profile=Profile.SCHEMA, discover=True)

    assert result.conformant
    assert server.store.ids_by_status() == before
    assert outcomes(result)["SCH-200-EMPTY"] is Outcome.NOT_RUN


@pytest.mark.slow
def test_token_expiring_mid_run_is_renewed_once() -> None:
    # Tokens live 2 s; the paced run lasts a few of them (the suite re-logs in at most 5 times).
    with ReferenceServer(ReferenceConfig(password=PASSWORD, token_ttl=2.0)) as short_lived:
        result = run(short_lived, profile=Profile.SCHEMA, max_examples=30, rate_limit=30.0)

    assert result.conformant
    logins = [r for r in short_lived.request_log if r.method == "POST" and r.path == "/v1/tokens"]
    # Each expiry costs one fresh login; conformant means no 401 reached the checks.
    assert len(logins) >= 2
    assert any(r.status_code == 401 for r in short_lived.request_log)


def test_product_version_is_read_from_the_target(server: ReferenceServer) -> None:
    result = run(server, profile=Profile.SCHEMA)

    assert result.product is not None
    assert result.product["version"].endswith("-reference")
    probes = [r for r in server.request_log if r.path == "/v1/sddc-managers"]
    assert len(probes) == 1 and probes[0].method == "GET"


def test_discover_takes_cancellable_in_progress_tasks_first() -> None:
    # The variation lists two IN_PROGRESS tasks with isCancellable false first: --discover puts them
    # last, so the scenarios that need a cancel to succeed never start with a task that refuses it.
    config = ReferenceConfig(password=PASSWORD, defects=frozenset({"non-cancellable-in-progress"}))
    with ReferenceServer(config) as server:
        options = RunOptions(base_url=server.base_url, username=server.config.username, password=PASSWORD,
                             discover=True, allow_cancel_discovered=True, seed=2)
        with open_session(options) as session:
            discovered = session.pool.discovered["IN_PROGRESS"]
            refusing = session.pool.refusing
            assert len(refusing) == 2 and set(discovered[-2:]) == refusing
            assert session.pool.take_in_progress() not in refusing


def test_a_run_freezes_what_it_loaded_while_it_sends_and_gives_it_back(server: ReferenceServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Freezing spares Hypothesis' per-thread gc.collect() a walk over every loaded module; it comes
    # before pytest configures itself (what the imports and the session built) and again after
    # collection (the suite's modules), before the first judged request, and is undone when the
    # run ends.
    seen: list[tuple[bool, int]] = []
    real_freeze = gc.freeze

    def freeze() -> None:
        seen.append(("conformance.suite.test_schema" in sys.modules, len(server.request_log)))
        real_freeze()

    monkeypatch.setattr(gc, "freeze", freeze)
    result = run(server, profile=Profile.SCHEMA, max_examples=5)

    assert result.conformant
    assert len(seen) == 2 and seen[1][0]  # the second once the suite's modules are loaded
    assert seen[0][1] == seen[1][1] < result.requests_sent  # both before the first judged request
    assert gc.get_freeze_count() == 0


def test_a_run_ignores_the_conftest_files_where_it_is_started(server: ReferenceServer, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite is collected by package name, so pytest would otherwise load ./conftest.py and
    # ./test*/conftest.py of the user's working directory into the run.
    broken = "raise RuntimeError('a project conftest must not be loaded')\n"
    (tmp_path / "conftest.py").write_text(broken)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text(broken)
    monkeypatch.chdir(tmp_path)

    result = run(server, profile=Profile.SCHEMA, max_examples=5)

    assert result.conformant

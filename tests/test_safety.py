"""Safety on real appliances, proven from the reference server's own request log."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import CliResult

from conformance.engine.session import open_session
from conformance.engine.target import Target, TargetConfig
from conformance.options import RunOptions
from conformance.reference import ReferenceConfig, ReferenceServer
from conformance.reference.app import UNPOOLED_TASKS
from conformance.reference.store import RequestRecord

PASSWORD = "s3cret-Safety-pw"
Cli = Callable[..., CliResult]


@pytest.fixture
def appliance() -> Iterator[ReferenceServer]:
    server = ReferenceServer(ReferenceConfig(password=PASSWORD)).start()
    try:
        yield server
    finally:
        server.stop()


def run_cli(cli_main: Cli, server: ReferenceServer, tmp_path: Path, *args: str) -> CliResult:
    # In this process (the server's request log is the evidence here, not the process).
    return cli_main("run", "--base-url", server.base_url, "--username", server.config.username,
                    "--report-dir", str(tmp_path / "reports"), "--seed", "5", *args,
                    env={"SDDC_PASSWORD": PASSWORD})


def deletes(server: ReferenceServer) -> list[RequestRecord]:
    return [r for r in server.request_log if r.method == "DELETE"]


def test_only_handed_over_in_progress_tasks_are_cancelled(cli_main: Cli, appliance: ReferenceServer,
                                                         tmp_path: Path) -> None:
    tasks = appliance.state_document()["tasks"]
    handed = tasks["IN_PROGRESS"][0]
    others = {s: ids for s, ids in tasks.items() if s != "IN_PROGRESS"}
    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps({**others, "IN_PROGRESS": [handed]}))

    # --discover lists the other seven IN_PROGRESS tasks too: the suite must still leave them alone.
    result = run_cli(cli_main, appliance, tmp_path, "--tasks-file", str(tasks_file), "--discover")

    assert result.returncode == 0, result.stdout + result.stderr
    cancelled_in_progress = {
        r.task_id for r in deletes(appliance) if r.task_status_before == "IN_PROGRESS"
    }
    assert cancelled_in_progress == {handed}
    untouched = set(tasks["IN_PROGRESS"]) - {handed}
    assert all(appliance.store.status_of(t) == "IN_PROGRESS" for t in untouched)


@pytest.fixture
def unpooled_appliance() -> Iterator[ReferenceServer]:
    """An appliance that also holds listed-but-not-handed-over tasks with short ids (0, a, %, ...)."""
    server = ReferenceServer(ReferenceConfig(password=PASSWORD, defects=frozenset({"non-uuid-task-ids"}))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("discover", [["--discover"], []], ids=["discover", "listing-only"])
def test_generated_ids_never_name_an_existing_task(cli_main: Cli, unpooled_appliance: ReferenceServer,
                                                   tmp_path: Path, discover: list[str]) -> None:
    appliance = unpooled_appliance
    handed = {i for ids in appliance.state_document()["tasks"].values() for i in ids}
    unpooled = set(appliance.unpooled_task_ids())
    # Short ids such as "0" and "a" are what a generator produces first: the test is only worth
    # something if the server really holds tasks a careless generator would hit.
    assert {"0", "a", "%"} <= unpooled and not unpooled & handed
    listed = handed | unpooled
    result = run_cli(cli_main, appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path),
                     "--profile", "schema", "--max-examples", "200", *discover)

    assert result.returncode == 0, result.stdout + result.stderr
    sent = deletes(appliance)
    # Judged from the server's log, not from the suite's own idea of what it generated: a DELETE
    # either names a task the suite may use (handed over, or found by --discover, and refusing the
    # cancel), or names no listed task at all.
    for record in sent:
        if record.task_id in listed:
            assert record.task_status_before not in (None, "IN_PROGRESS"), record
            if not discover:
                assert record.task_id in handed, f"DELETE of an unlisted-to-the-suite task: {record}"
        else:
            assert record.task_status_before is None, record
    assert not [r for r in sent if r.task_id in unpooled and r.task_status_before == "IN_PROGRESS"]
    generated = [r for r in sent if r.task_id not in listed]
    assert len(generated) >= 150
    # The schema profile never cancels anything: every IN_PROGRESS task, pooled or not, is untouched.
    assert not [r for r in sent if r.task_status_before == "IN_PROGRESS"]
    assert appliance.store.ids_by_status()["IN_PROGRESS"] == appliance.state_document()["tasks"]["IN_PROGRESS"]
    assert all(appliance.store.status_of(t) == status for t, status in UNPOOLED_TASKS)
    # Even without --discover the run lists the target's tasks (read-only) to keep clear of them.
    assert any(r.method == "GET" and r.path == "/v1/tasks" for r in appliance.request_log)


def test_a_handed_over_task_that_finished_before_use_is_not_cancelled(cli_main: Cli, tmp_path: Path) -> None:
    config = ReferenceConfig(password=PASSWORD, defects=frozenset({"task-finishes-before-use"}))
    with ReferenceServer(config) as appliance:
        finishing = appliance.service.finishes_on_read
        assert finishing is not None
        result = run_cli(cli_main, appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path),
                         "--max-examples", "20")
        log = list(appliance.request_log)

    assert result.returncode == 0, result.stdout + result.stderr
    # The suite did read the task (so it could see it finish) and never cancelled it: its listing
    # showed the task, so the first read is the precondition read right before use, and the task
    # finishes right after it; the cancel that follows meets a SUCCESSFUL task, is refused (409),
    # and the read after it shows the task finished on its own, so another task is used.
    assert any(r.method == "GET" and r.task_id == finishing for r in log)
    assert not [r for r in log if r.method == "DELETE" and r.task_id == finishing
                and (r.status_code != 409 or r.task_status_before == "IN_PROGRESS")]
    # ... while the other handed-over IN_PROGRESS tasks were used: the run did cancel something.
    assert [r for r in log if r.method == "DELETE" and r.task_status_before == "IN_PROGRESS"]


def test_request_budget_holds(cli_main: Cli, appliance: ReferenceServer, tmp_path: Path) -> None:
    # Below the minimum every MUST needs on this target: refused before anything is sent, with the number.
    refused = run_cli(cli_main, appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path),
                      "--max-requests", "25")
    assert refused.returncode == 2, refused.stderr
    assert appliance.request_log == [] and not (tmp_path / "reports").exists()
    match = re.search(r"--max-requests 25 is below the (\d+) requests needed .* allow at least \1", refused.stderr)
    assert match, refused.stderr
    # That number is enough: the run stays within it and judges every MUST.
    budget = int(match.group(1))
    result = run_cli(cli_main, appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path),
                     "--max-requests", str(budget))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(appliance.request_log) <= budget
    document = json.loads((tmp_path / "reports" / "findings.json").read_text("utf-8"))
    assert document["verdict"] == "CONFORMANT"
    assert not [r["id"] for r in document["requirements"] if r["severity"] == "MUST" and r["outcome"] == "NOT RUN"]


def _state_file(server: ReferenceServer, tmp_path: Path) -> str:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(server.state_document()))
    return str(path)


def test_dry_run_sends_nothing(cli_main: Cli, appliance: ReferenceServer, tmp_path: Path) -> None:
    result = run_cli(cli_main, appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert appliance.request_log == []
    handed = appliance.state_document()["tasks"]["IN_PROGRESS"][0]
    assert "BEH-CANCEL" in result.stdout and handed in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


class _FakeTime:
    """Stands in for the `time` module inside engine/target.py: a clock that only sleeps move."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("rate", [20.0, 4.0])
def test_rate_limit_spaces_requests(rate: float) -> None:
    clock = _FakeTime()
    target = Target(TargetConfig(base_url="http://127.0.0.1:9", rate_limit=rate),
                    sleep=clock.sleep, clock=clock.monotonic)
    starts = []
    for _ in range(10):
        target._take_slot()
        starts.append(clock.now)

    interval = 1.0 / rate
    # The first request goes at once; every later one waits for its slot, exactly one interval on.
    assert starts[0] == 1000.0
    assert [round(b - a, 9) for a, b in itertools.pairwise(starts)] == [interval] * 9
    assert len(clock.sleeps) == 9
    assert target.requests_sent == 10


def test_rate_limit_does_not_wait_when_requests_are_already_spaced() -> None:
    clock = _FakeTime()
    target = Target(TargetConfig(base_url="http://127.0.0.1:9", rate_limit=10.0),
                    sleep=clock.sleep, clock=clock.monotonic)
    for _ in range(5):
        target._take_slot()
        clock.now += 0.5  # the exchange itself took longer than the interval
    assert clock.sleeps == []


def test_no_rate_limit_never_sleeps() -> None:
    clock = _FakeTime()
    target = Target(TargetConfig(base_url="http://127.0.0.1:9"),
                    sleep=clock.sleep, clock=clock.monotonic)
    for _ in range(20):
        target._take_slot()
    assert clock.sleeps == [] and target.requests_sent == 20


def test_rate_limit_option_reaches_the_target() -> None:
    # The fake-clock tests above prove the limiter; this proves --rate-limit's option feeds it.
    with open_session(RunOptions(rate_limit=20.0, max_examples=1)) as session:
        assert session.target.config.rate_limit == 20.0

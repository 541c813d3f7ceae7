"""Safety on real appliances, proven from the reference server's own request log."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.reference import ReferenceConfig, ReferenceServer

PASSWORD = "s3cret-Safety-pw"


@pytest.fixture
def appliance() -> Iterator[ReferenceServer]:
    server = ReferenceServer(ReferenceConfig(password=PASSWORD)).start()
    try:
        yield server
    finally:
        server.stop()


def run_cli(server: ReferenceServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SDDC_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--base-url", server.base_url, "--username",
         server.config.username, "--report-dir", str(tmp_path / "reports"), "--seed", "5", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


def deletes(server: ReferenceServer) -> list[object]:
    return [r for r in server.request_log if r.method == "DELETE"]


def test_only_handed_over_in_progress_tasks_are_cancelled(appliance: ReferenceServer, tmp_path: Path) -> None:
    tasks = appliance.state_document()["tasks"]
    handed = tasks["IN_PROGRESS"][0]
    others = {s: ids for s, ids in tasks.items() if s != "IN_PROGRESS"}
    tasks_file = tmp_path / "tasks.json"
    tasks_file.write_text(json.dumps({**others, "IN_PROGRESS": [handed]}))

    # --discover lists the other seven IN_PROGRESS tasks too: the suite must still leave them alone.
    result = run_cli(appliance, tmp_path, "--tasks-file", str(tasks_file), "--discover")

    assert result.returncode == 0, result.stdout + result.stderr
    cancelled_in_progress = {
        r.task_id for r in deletes(appliance) if r.task_status_before == "IN_PROGRESS"
    }
    assert cancelled_in_progress == {handed}
    untouched = set(tasks["IN_PROGRESS"]) - {handed}
    assert all(appliance.store.status_of(t) == "IN_PROGRESS" for t in untouched)


@pytest.mark.parametrize("discover", [["--discover"], []], ids=["discover", "listing-only"])
def test_generated_ids_never_name_an_existing_task(appliance: ReferenceServer, tmp_path: Path,
                                                   discover: list[str]) -> None:
    result = run_cli(appliance, tmp_path, "--profile", "schema", "--max-examples", "200", *discover)

    assert result.returncode == 0, result.stdout + result.stderr
    known = {i for ids in appliance.state_document()["tasks"].values() for i in ids}
    generated = [r for r in deletes(appliance) if r.task_id not in known]
    assert len(generated) >= 150
    assert all(r.task_status_before is None for r in generated)
    # The schema profile never cancels anything.
    assert not [r for r in deletes(appliance) if r.task_status_before == "IN_PROGRESS"]
    assert appliance.store.ids_by_status()["IN_PROGRESS"] == appliance.state_document()["tasks"]["IN_PROGRESS"]
    # Even without --discover the run lists the target's tasks (read-only) to keep clear of them.
    assert any(r.method == "GET" and r.path == "/v1/tasks" for r in appliance.request_log)


@pytest.mark.parametrize("budget", [25, 120])
def test_request_budget_holds(appliance: ReferenceServer, tmp_path: Path, budget: int) -> None:
    result = run_cli(appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path),
                     "--max-requests", str(budget))

    assert len(appliance.request_log) <= budget
    assert len(appliance.request_log) >= budget - 5, "the run should use its budget, not stop early"
    assert "budget" in (result.stdout + result.stderr)
    assert (tmp_path / "reports" / "findings.json").exists()


def _state_file(server: ReferenceServer, tmp_path: Path) -> str:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(server.state_document()))
    return str(path)


def test_dry_run_sends_nothing(appliance: ReferenceServer, tmp_path: Path) -> None:
    result = run_cli(appliance, tmp_path, "--tasks-file", _state_file(appliance, tmp_path), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert appliance.request_log == []
    handed = appliance.state_document()["tasks"]["IN_PROGRESS"][0]
    assert "BEH-CANCEL" in result.stdout and handed in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_rate_limit_spaces_requests(appliance: ReferenceServer, tmp_path: Path) -> None:
    result = run_cli(appliance, tmp_path, "--profile", "schema", "--max-examples", "10", "--rate-limit", "20")

    assert result.returncode == 0, result.stderr
    stamps = sorted(r.timestamp for r in appliance.request_log)
    # 20 requests per second: no two requests closer than the interval, give or take scheduling.
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.03

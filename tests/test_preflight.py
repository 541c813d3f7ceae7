"""Preflight: the user's mistakes (a refused token, stale task ids) never become findings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import TEST_PASSWORD, CliResult

WORKTREE = Path(__file__).resolve().parent.parent
TIMEOUT = 180


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # This worktree's code, not whatever the installed console script points at.
    environment = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    environment["PYTHONPATH"] = str(WORKTREE)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=environment, cwd=cwd or WORKTREE)


def error_line(result: subprocess.CompletedProcess[str] | CliResult) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# The preflight's decisions run in this process (cli_main); the command's own process is test_cli.py's.
def test_refused_token_exits_3_with_no_verdict_reports(reference_server: Callable[..., Any], tmp_path: Path,
                                                       cli_main: Callable[..., CliResult]) -> None:
    server = reference_server()
    reports = tmp_path / "r"
    result = cli_main("run", "--base-url", server.base_url, "--token", "wrongtoken", "--max-examples", "5",
                     "--report-dir", str(reports))
    assert result.returncode == 3, result.stderr
    line = error_line(result)
    assert "refused the token (401)" in line and "NO VERDICT" in line
    assert "undocumented" not in line and "wrongtoken" not in line
    document = json.loads((reports / "findings.json").read_text("utf-8"))
    assert document["verdict"] == "NO VERDICT"
    assert all(r["outcome"] != "FAIL" for r in document["requirements"])
    # Nothing but the preflight's read-only request reached the target.
    assert {r.method for r in server.request_log} == {"GET"}


def test_stale_task_ids_exit_2_before_any_delete(reference_server: Callable[..., Any], tmp_path: Path,
                                                cli_main: Callable[..., CliResult]) -> None:
    server = reference_server()
    stale = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(7)]
    args = [a for task_id in stale for a in ("--task", f"SUCCESSFUL={task_id}")]
    result = cli_main("run", "--base-url", server.base_url, "--username", "admin@local", *args,
                     "--report-dir", str(tmp_path / "r"), env={"SDDC_PASSWORD": TEST_PASSWORD})
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert stale[0] in line and "and 2 more" in line and stale[6] not in line
    assert not any(r.method == "DELETE" for r in server.request_log)
    assert not (tmp_path / "r").exists()


def test_task_in_another_status_moves_in_the_pool(reference_server: Callable[..., Any]) -> None:
    from conformance.engine.session import open_session
    from conformance.model import Profile
    from conformance.options import RunOptions

    server = reference_server()
    tasks = server.state_document()["tasks"]
    in_progress, successful = tasks["IN_PROGRESS"][0], tasks["SUCCESSFUL"][0]
    options = RunOptions(base_url=server.base_url, username="admin@local", password=TEST_PASSWORD,
                         tasks={"SUCCESSFUL": [in_progress], "IN_PROGRESS": [successful]},
                         profile=Profile.BEHAVIOR)
    with open_session(options) as session:
        # Moved to the status it really has...
        assert session.pool.given.get("SUCCESSFUL") == [successful]
        assert not session.pool.given.get("IN_PROGRESS")
        assert any(f"{successful} was handed over as IN_PROGRESS but reads SUCCESSFUL" in n for n in session.notes)
        # ...except into IN_PROGRESS: nobody agreed to have that one cancelled.
        assert session.pool.take_in_progress() is None and in_progress in session.pool.known_ids()
        assert any(f"{in_progress} was handed over as SUCCESSFUL but reads IN_PROGRESS; not used" in n
                   for n in session.notes)


def test_dry_run_needs_no_credentials_and_sends_nothing(reference_server: Callable[..., Any],
                                                       cli_main: Callable[..., CliResult]) -> None:
    server = reference_server()
    result = cli_main("run", "--dry-run", "--base-url", server.base_url, "--username", "admin@local",
                     "--profile", "schema")
    assert result.returncode == 0, result.stderr
    assert "nothing will be sent" in result.stdout
    # A schema run cancels no IN_PROGRESS task: no 200 can come back for SCH-200-EMPTY to check.
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("SCH-200-EMPTY"))
    assert "none is expected" in line
    assert server.request_log == []


def test_not_run_reasons_name_the_pytest_option() -> None:
    from conformance.engine.session import explain_not_run
    from conformance.requirements.scenarios import NO_IN_PROGRESS

    class Pool:
        given: ClassVar[dict[str, list[str]]] = {}

    class Options:
        flag_prefix = "--sddc-"
        max_requests = 10

    class Session:
        pool = Pool()
        options = Options()
        provision = None
        moved_from_in_progress: ClassVar[list[tuple[str, str]]] = []

        def out_of_budget(self) -> bool:
            return False

    text = explain_not_run(Session(), NO_IN_PROGRESS)  # type: ignore[arg-type]
    assert "--sddc-task IN_PROGRESS=<id>" in text
    Session.pool.given = {"IN_PROGRESS": ["a", "b"]}
    assert explain_not_run(Session(), NO_IN_PROGRESS).startswith("used up: 2 IN_PROGRESS tasks given")  # type: ignore[arg-type]
    Session.out_of_budget = lambda self: True  # type: ignore[method-assign]
    assert "request budget exhausted" in explain_not_run(Session(), NO_IN_PROGRESS)  # type: ignore[arg-type]


def test_mid_run_401_is_no_verdict_not_an_undocumented_status(exchange: Callable[..., Any]) -> None:
    import pytest

    from conformance.engine.recorder import Recorder
    from conformance.errors import AuthenticationFailed

    recorder = Recorder()
    recorder.token_accepted = lambda: False
    with pytest.raises(AuthenticationFailed):
        recorder.check(exchange(status=401))
    assert all(r.failures == 0 for r in recorder.results())
    # The token still works: a 401 for one id is the target's answer, judged like any other.
    recorder.token_accepted = lambda: True
    assert recorder.check(exchange(status=401))


@pytest.mark.slow
def test_plain_pytest_reads_the_config_file_and_shows_short_failures(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.sddc-conformance]\nmax-examples = 5\nseed = 4\ndefect = ["plain-text-error"]\n', "utf-8")
    environment = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    environment["PYTHONPATH"] = str(WORKTREE)
    # pytest cuts the short summary at the terminal's width: a wide one shows the whole message.
    environment["COLUMNS"] = "240"
    result = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--tb=short",
                             "-p", "no:cacheprovider", "-p", "no:xdist"],
                            capture_output=True, text=True, timeout=TIMEOUT, env=environment, cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    # The target is named before the tests run, with the seed the file asked for.
    assert "sddc-conformance: target embedded reference server http://127.0.0.1:" in out and "seed 4" in out
    # The suite's own message, not a traceback through its internals.
    assert re.search(r"FAILED test_schema.py::test_response_requirement\[SCH-ERROR-BODY\] - "
                     r"SCH-ERROR-BODY: (404|409) body: the body is not JSON", out), out[-2000:]
    assert "_assert.py" not in out and "Traceback" not in out

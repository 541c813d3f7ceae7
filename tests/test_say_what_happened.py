"""Issue 24, part 6: every message says what really happened (each test fails without its fix)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PASSWORD, run_in_process

from conformance.engine.recorder import Recorder
from conformance.engine.runner import rerun_command
from conformance.engine.session import SuiteSession, explain_not_run, open_session
from conformance.engine.target import Target, TargetConfig
from conformance.errors import OptionsError
from conformance.model import Outcome, Profile
from conformance.options import RunOptions
from conformance.requirements.scenarios import NO_IN_PROGRESS
from conformance.tasks import TaskPool

RUNNING = "11111111-1111-4111-8111-111111111111"
DONE = "22222222-2222-4222-8222-222222222222"


def session_for(options: RunOptions) -> SuiteSession:
    target = Target(TargetConfig(base_url=str(options.base_url), token="t"))
    return SuiteSession(options=options, target=target, recorder=Recorder(), pool=TaskPool.from_mapping(options.tasks),
                        seed=7, embedded=False)


def test_a_run_that_cancelled_nothing_does_not_ask_for_fresh_tasks() -> None:
    session = session_for(RunOptions(base_url="https://sddc.example", token="t", profile=Profile.SCHEMA,
                                     tasks={"IN_PROGRESS": [RUNNING], "SUCCESSFUL": [DONE]}))
    command, notes = rerun_command(session)
    assert not any("cancelled" in n for n in notes)
    assert f"--task=IN_PROGRESS={RUNNING}" in command


def test_rerun_leaves_out_cancelled_tasks_and_says_they_must_be_replaced() -> None:
    session = session_for(RunOptions(base_url="https://sddc.example", token="t",
                                     tasks={"IN_PROGRESS": [RUNNING], "SUCCESSFUL": [DONE]}))
    session.cancelled_by_suite.append(RUNNING)
    command, notes = rerun_command(session)
    assert RUNNING not in command and f"--task=SUCCESSFUL={DONE}" in command
    assert any(f"this run cancelled 1 IN_PROGRESS task ({RUNNING}): hand over fresh ones" in n for n in notes)


def test_rerun_keeps_the_tasks_file_and_the_spec(tmp_path: Path) -> None:
    tasks_file, spec = tmp_path / "tasks.json", tmp_path / "vcf.json"
    session = session_for(RunOptions(base_url="https://sddc.example", token="t", tasks_file=tasks_file,
                                     task_flags=(f"SUCCESSFUL={DONE}",), spec=spec,
                                     tasks={"IN_PROGRESS": [RUNNING], "SUCCESSFUL": [DONE]}))
    session.cancelled_by_suite.append(RUNNING)
    command, notes = rerun_command(session)
    assert f"--tasks-file {tasks_file}" in command and f"--spec {spec}" in command
    assert command.count("--task=") == 1 and RUNNING not in command
    assert any("hand over fresh ones in the tasks file" in n for n in notes)


def test_in_progress_tasks_that_read_cancelled_at_preflight_are_named(reference_server: Callable[..., Any]) -> None:
    server = reference_server()
    cancelled = server.state_document()["tasks"]["CANCELLED"][0]
    options = RunOptions(base_url=server.base_url, username="admin@local", password=TEST_PASSWORD,
                         tasks={"IN_PROGRESS": [cancelled]}, profile=Profile.BEHAVIOR)
    with open_session(options) as session:
        assert session.pool.given["CANCELLED"] == [cancelled] and not session.pool.given["IN_PROGRESS"]
        reason = explain_not_run(session, NO_IN_PROGRESS)
    assert "no IN_PROGRESS task given" not in reason
    assert f"no longer IN_PROGRESS at preflight ({cancelled} read CANCELLED): hand over a fresh one" in reason


def test_schema_profile_says_it_never_cancels_for_an_empty_200() -> None:
    run = run_in_process(profile=Profile.SCHEMA, max_examples=3)
    [result] = [r for r in run.results if r.requirement.id == "SCH-200-EMPTY"]
    assert result.outcome is Outcome.NOT_RUN
    assert result.reason.startswith("--profile schema never cancels an IN_PROGRESS task")


def test_an_interrupt_during_the_preflight_keeps_no_verdict_reports(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from conformance.cli import main
    from conformance.engine import session as session_module

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module, "preflight", interrupted)
    reports = tmp_path / "r"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--max-examples", "3", "--report-dir", str(reports)])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip() == f"sddc-conformance: interrupted: NO VERDICT, reports in {reports}"
    document = json.loads((reports / "findings.json").read_text("utf-8"))
    assert (document["verdict"], document["stopped"]) == ("NO VERDICT", "interrupted")


@pytest.mark.parametrize(("url", "fixed"), [("https://sddc.example/v1", "https://sddc.example"),
                                            ("https://sddc.example/api/V1/", "https://sddc.example/api")])
def test_a_base_url_ending_in_v1_is_a_usage_error_naming_the_fix(url: str, fixed: str) -> None:
    with pytest.raises(OptionsError, match=f"ends in /v1, which the suite adds itself .*: pass --base-url {fixed}$"):
        RunOptions(base_url=url).validate()
    RunOptions(base_url="https://sddc.example/sddc-api").validate()
    RunOptions(base_url="https://sddc.example/v10").validate()


def test_console_says_where_the_other_failures_are(defective_run: Any) -> None:
    from conformance.report.console import more_failures, print_summary

    assert more_failures(6, 6) == "  ... and 3 more in report.html / findings.json"
    assert more_failures(3, 3) is None and more_failures(2, 2) is None
    assert more_failures(9, 5) == ("  ... and 6 more failed evaluations: 2 more in report.html / findings.json, "
                                   "the rest counted there (repeats of those shown, or past the examples the "
                                   "reports keep)")
    assert str(more_failures(4, 1)).startswith("  ... and 3 more failed evaluations, all counted there")
    lines: list[str] = []
    print_summary(defective_run, lines.append)
    failing = [r for r in defective_run.results if r.failures > 3]
    assert failing
    for result in failing:
        start = lines.index(next(line for line in lines if line.startswith(f"{result.requirement.id} failed: ")))
        assert any(line.startswith("  ... and ") for line in lines[start:])

"""The pytest plugin from a user's point of view: options, ini keys, fixtures, markers, reports."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance import requirements
from conformance.model import Outcome, Severity
from conformance.outcome import RequirementResult, RunResult
from conformance.pytest_plugin import requirement_marker
from conformance.report.console import closing_line

pytest_plugins = ["pytester"]

SCENARIO_COUNT = len(requirements.scenario_requirements())
# The schema suite has one test item per response requirement.
RESPONSE_COUNT = len(requirements.response_checks())


def findings(directory: Path) -> dict[str, object]:
    document = json.loads((directory / "findings.json").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_marker_names_follow_the_requirement_ids() -> None:
    assert requirement_marker("BEH-RACE") == "sddc_beh_race"
    assert requirement_marker("SCH-200-EMPTY") == "sddc_sch_200_empty"


@pytest.mark.slow
def test_every_requirement_marker_selects_its_tests(pytester: pytest.Pytester) -> None:
    # Registered when the suite is collected, so --strict-markers and -m both work on them.
    for requirement in requirements.catalogue():
        marker = requirement_marker(requirement.id)
        result = pytester.runpytest("--strict-markers", "--collect-only", "-q", "--pyargs", "conformance.suite",
                                    "-m", marker)
        assert result.ret == 0, result.stdout.str()
        assert "selected" in result.stdout.str() or "test" in result.stdout.str()


def test_an_unrelated_project_gets_no_requirement_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert "sddc_beh_race" not in result.stdout.str()


def test_ini_options_and_report_dir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsddc_profile = schema\nsddc_max_examples = 10\nsddc_seed = 7\n"
                     "sddc_report_dir = reports/plain\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--pyargs", "conformance.suite")
    result.assert_outcomes(passed=RESPONSE_COUNT, deselected=SCENARIO_COUNT)
    # A plain pytest run wrote the same reports as `sddc-conformance run`, relative to the ini file.
    reports = pytester.path / "reports" / "plain"
    assert {"junit.xml", "findings.json", "report.html", "summary.md", "manifest.json"} <= {
        p.name for p in reports.iterdir()
    }
    document = findings(reports)
    assert (document["profile"], document["max_examples"], document["seed"]) == ("schema", 10, 7)
    assert document["verdict"] == "CONFORMANT"
    # pytest's own terminal summary ends with the run's verdict, worded as every report words it.
    result.stdout.fnmatch_lines(["sddc-conformance target: the embedded reference server*",
                                 "*= sddc-conformance =*", f"{document['headline']}: * passed, *; seed 7",
                                 "reports: *plain"])
    assert result.ret == 0


def test_command_line_beats_ini_and_markers_deselect(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini("[pytest]\nsddc_profile = schema\nsddc_max_examples = 500\n")
    report_dir = tmp_path / "cli-reports"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--strict-markers", "--pyargs", "conformance.suite",
        "--sddc-profile", "behavior", "--sddc-max-examples", "10", "--sddc-seed", "3",
        "--sddc-report-dir", str(report_dir),
        "-m", "not sddc_beh_race and not sddc_beh_stateful",
    )
    # Profile behavior from the command line: the schema tests are deselected; the markers drop two more.
    result.assert_outcomes(passed=SCENARIO_COUNT - 2, deselected=RESPONSE_COUNT + 2)
    outcomes = {r["id"]: r["outcome"] for r in findings(report_dir)["requirements"]}  # type: ignore[attr-defined]
    assert outcomes["BEH-RACE"] == "NOT RUN"
    assert outcomes["BEH-STATEFUL"] == "NOT RUN"
    assert outcomes["BEH-CANCEL"] == "PASS"
    assert findings(report_dir)["max_examples"] == 10


def test_a_response_check_marker_selects_the_schema_test(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--pyargs", "conformance.suite", "--sddc-max-examples", "10",
        "-m", "sddc_sch_200_empty", "--collect-only", "-q",
    )
    # Only that requirement's own item of the schema suite.
    result.stdout.fnmatch_lines(["*test_schema.py::test_response_requirement?SCH-200-EMPTY?*"])
    assert "test_scenario" not in result.stdout.str()
    assert "SCH-STATUS" not in result.stdout.str()


def test_user_tests_against_a_given_target(pytester: pytest.Pytester, reference_server: object,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server = reference_server()  # type: ignore[operator]
    state = pytester.path / "state.json"
    state.write_text(json.dumps(server.state_document()), encoding="utf-8")
    monkeypatch.setenv("SDDC_PASSWORD", server.config.password)
    # Real ids: the preflight stops a run that hands over ids the target does not know.
    tasks = server.state_document()["tasks"]
    skipped, failed = tasks["SKIPPED"][0], tasks["FAILED"][0]
    pytester.makeini(f"[pytest]\nsddc_base_url = {server.base_url}\nsddc_username = {server.config.username}\n"
                     f"sddc_tasks_file = state.json\nsddc_task =\n    SKIPPED={skipped}\n    FAILED={failed}\n"
                     "sddc_rate_limit = 500\n")
    pytester.makepyfile(test_mine=f"""
        def test_uses_the_ini_target(sddc_target, sddc_task_pool, sddc_session):
            assert sddc_target.base_url.startswith("http://127.0.0.1:")
            assert sddc_task_pool.given["IN_PROGRESS"]
            assert "{skipped}" in sddc_task_pool.given["SKIPPED"]
            assert "{failed}" in sddc_task_pool.given["FAILED"]
            assert sddc_session.options.rate_limit == 500
            assert sddc_target.cancel("unknown-id-here", purpose="t").response.status == 404
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert any(r.method == "DELETE" for r in server.request_log)


def test_bad_ini_number_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsddc_max_examples = many\n")
    pytester.makepyfile(test_mine="def test_x(sddc_session):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert "sddc_max_examples must be a number, got 'many'" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0



# -- the verdict in pytest's terminal summary and its exit status (hand-made results) -----------------

def _finish(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            run: RunResult, exitstatus: int, *, suite_ran: bool = True, args: tuple[str, ...] = ()) -> tuple[int, str]:
    """The plugin's end of a plain pytest run that judged `run`: (exit status, terminal output)."""
    import importlib

    # Through sys.modules, as the plugin imports them: pytester's in-process runs of other tests
    # restore sys.modules, and a package attribute may still name a module object gone from it.
    pytest_plugin = importlib.import_module("conformance.pytest_plugin")
    runner = importlib.import_module("conformance.engine.runner")

    # Other installed plugins cost time to load and play no part; its terminal writes to capsys.
    config = pytester.parseconfigure("-p", "no:cacheprovider", "--disable-plugin-autoload",
                                     "-p", "conformance.pytest_plugin", *args)
    config.stash[pytest_plugin._OWNED] = SimpleNamespace(fatal=None)  # type: ignore[assignment]
    if suite_ran:
        config.stash[pytest_plugin._SUITE_SELECTED] = True
    monkeypatch.setattr(runner, "build_result", lambda session, stopped=None: run)
    session = SimpleNamespace(config=config, exitstatus=exitstatus)
    pytest_plugin.pytest_sessionfinish(session, exitstatus)  # type: ignore[arg-type]
    if exitstatus in pytest_plugin._SUMMARY_STATUSES:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        pytest_plugin.pytest_terminal_summary(reporter, exitstatus, config)
    return int(session.exitstatus), capsys.readouterr().out


def _run(outcome: Outcome, **fields: Any) -> RunResult:
    must = next(r for r in requirements.catalogue() if r.severity is Severity.MUST)
    others = [RequirementResult(r, Outcome.NOT_RUN, "no task", 0, 0, ()) for r in requirements.catalogue()
              if r.severity is Severity.MUST and r is not must][:2]
    values: dict[str, Any] = dict(
        suite_version="9.9", fragment_version="1.0", fragment_sha256="abc", target_url="http://127.0.0.1:1",
        embedded_target=True, profile="schema", seed=7, max_examples=5, started_at="s", finished_at="f",
        duration_seconds=1.0, requests_sent=10, exchanges_checked=8,
        results=(RequirementResult(must, outcome, "why", 1, int(outcome is Outcome.FAIL), ()), *others))
    values.update(fields)
    return RunResult(**values)


@pytest.mark.parametrize(("outcome", "stopped", "pytest_status", "expected_status", "headline"), [
    (Outcome.PASS, None, 0, 0, "CONFORMANT, 2 MUST requirements not run"),
    # A MUST failed where no test failed (the end-of-run re-reads fail earlier requirements).
    (Outcome.FAIL, None, 0, 1, "NOT CONFORMANT, 2 MUST requirements not run"),
    (Outcome.FAIL, None, 1, 1, "NOT CONFORMANT, 2 MUST requirements not run"),
    # A test of the user's failed: pytest's failure stands beside a conformant target.
    (Outcome.PASS, None, 1, 1, "CONFORMANT, 2 MUST requirements not run"),
    (Outcome.PASS, "target: gone", 0, 3, "NO VERDICT (target: gone)"),
    # pytest.exit(3) after the target stopped answering: no terminal summary, the line still shows.
    (Outcome.PASS, "target: gone", 3, 3, "NO VERDICT (target: gone)"),
])
def test_the_verdict_line_and_exit_status(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], outcome: Outcome,
                                          stopped: str | None, pytest_status: int, expected_status: int,
                                          headline: str) -> None:
    run = _run(outcome, stopped=stopped)
    status, out = _finish(pytester, monkeypatch, capsys, run, pytest_status)
    assert status == expected_status
    assert int(run.verdict.exit_code) == expected_status or pytest_status == 1
    assert f"\n{headline}: " in out, out
    # Worded exactly as the console's closing line.
    assert closing_line(run) in out


def test_reports_that_cannot_be_written_are_said_and_fail_the_run(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = pytester.path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    status, out = _finish(pytester, monkeypatch, capsys, _run(Outcome.PASS), 0,
                          args=("--sddc-report-dir", str(blocker / "reports")))
    assert status == 2
    assert "sddc-conformance: error: cannot write reports to" in out and "CONFORMANT" in out


def test_fixtures_alone_give_no_verdict(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _finish(pytester, monkeypatch, capsys, _run(Outcome.FAIL), 0, suite_ran=False)
    assert status == 0
    assert "CONFORMANT" not in out and "gives no verdict" in out


# -- where the configuration file is found ------------------------------------------------------------

@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user project with its sddc-conformance.toml, run from its own directory; a task file beside it."""
    directory = pytester.mkdir("project")
    (directory / "sddc-conformance.toml").write_text('profile = "schema"\nmax-examples = 12\n', encoding="utf-8")
    (pytester.path / "x.json").write_text('{"SUCCESSFUL": ["t-1"]}', encoding="utf-8")
    monkeypatch.chdir(directory)
    return directory


@pytest.mark.parametrize("args", [("--sddc-tasks-file", "../x.json"), ("--sddc-tasks-file=../x.json",)],
                         ids=["space", "equals"])
def test_the_config_is_found_whatever_the_option_form(pytester: pytest.Pytester, project: Path,
                                                       args: tuple[str, ...]) -> None:
    from conformance.config.from_pytest import config_warning, setting

    config = pytester.parseconfig(*args)
    assert setting(config, "max_examples") == 12 and setting(config, "profile") == "schema"
    if len(args) == 2:
        # pytest took ../x.json for a path to test and moved its rootdir: said, not ignored.
        assert config.rootpath == pytester.path
        warning = config_warning(config)
        assert warning is not None and str(project / "sddc-conformance.toml") in warning
        assert "write --sddc-tasks-file=../x.json" in warning
    else:
        assert config.rootpath == project and config_warning(config) is None


def test_an_explicit_config_file(pytester: pytest.Pytester, project: Path) -> None:
    from conformance.config.from_pytest import config_warning, setting
    from conformance.errors import ConfigError

    (pytester.path / "other.toml").write_text("max-examples = 33\n", encoding="utf-8")
    config = pytester.parseconfig("--sddc-config", "../other.toml")
    assert setting(config, "max_examples") == 33 and config_warning(config) is None
    with pytest.raises(ConfigError, match=r"--sddc-config missing\.toml: no such file"):
        setting(pytester.parseconfig("--sddc-config", "missing.toml"), "max_examples")


def test_the_rootdir_warning_shows_under_quiet(pytester: pytest.Pytester, project: Path) -> None:
    (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--sddc-tasks-file", "../x.json", "test_nothing.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PytestConfigWarning: sddc-conformance: using *sddc-conformance.toml, which is "
                                 "not in pytest's rootdir*write --sddc-tasks-file=../x.json*"])


def test_an_unreachable_target_ends_with_no_verdict(pytester: pytest.Pytester) -> None:
    from conftest import free_port

    result = pytester.runpytest("-p", "no:cacheprovider", "--pyargs", "conformance.suite", "--sddc-token", "t",
                                "--sddc-base-url", f"http://127.0.0.1:{free_port()}", "--sddc-timeout", "2")
    # pytest writes no summary after pytest.exit(3): the plugin writes the verdict line itself.
    result.stdout.fnmatch_lines(["*= sddc-conformance =*", "NO VERDICT (target: *stopped answering*): 0 passed, *"])
    assert result.ret == 3

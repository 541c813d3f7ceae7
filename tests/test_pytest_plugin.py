"""The pytest plugin from a user's point of view: options, ini keys, fixtures, markers, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import requirements
from conformance.pytest_plugin import requirement_marker

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


def test_fixtures_in_a_users_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="""
        from conformance.engine.session import SuiteSession
        from conformance.engine.target import Target
        from conformance.tasks import TaskPool


        def test_target_answers_unknown_ids(sddc_target):
            assert isinstance(sddc_target, Target)
            exchange = sddc_target.cancel("no-such-task-for-sure", purpose="user's own test")
            assert exchange.response.status == 404


        def test_pool_and_session_agree(sddc_task_pool, sddc_session, sddc_target):
            assert isinstance(sddc_task_pool, TaskPool)
            assert isinstance(sddc_session, SuiteSession)
            assert sddc_session.pool is sddc_task_pool and sddc_session.target is sddc_target
            assert sddc_task_pool.known_ids()
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--sddc-timeout", "5")
    result.assert_outcomes(passed=2)


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

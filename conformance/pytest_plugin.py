"""pytest plugin (entry point `pytest11`): run the conformance suite inside any pytest run.

    pytest --pyargs conformance.suite --sddc-base-url https://sddc.example --sddc-username admin@local

Without --sddc-base-url the embedded reference server is the target. `sddc-conformance run`
drives the same tests through this plugin; nothing here is a second implementation.

Like Hypothesis' own plugin, this module loads in any pytest run without importing the engine:
it imports only pytest and the suite's light constants at module level; the engine, requests,
jsonschema, hypothesis and schemathesis load only when a conformance test or fixture is used.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from conformance.errors import BudgetExhausted, NoVerdict, UsageError
from conformance.options import DEFAULT_MAX_EXAMPLES, DEFAULT_TIMEOUT
from conformance.text import clean_line

if TYPE_CHECKING:
    from conformance.engine.session import SuiteSession
    from conformance.engine.target import Target
    from conformance.outcome import RunResult
    from conformance.tasks import TaskPool

_PROFILES = ("schema", "behavior", "full")


def pytest_addoption(parser: pytest.Parser) -> None:
    from conformance.config.from_pytest import INI

    group = parser.getgroup("sddc-conformance", "SDDC Manager Cancel Task conformance")
    group.addoption("--sddc-config", metavar="FILE",
                    help="options file (sddc-conformance.toml, or a pyproject.toml with [tool.sddc-conformance]); "
                    "default: the one in the directory pytest is run from, else in pytest's rootdir")
    group.addoption("--sddc-base-url", help="target base URL; default: the embedded reference server")
    group.addoption("--sddc-token", help="bearer token (or env SDDC_TOKEN)")
    group.addoption("--sddc-username", help="user for POST /v1/tokens; password from env SDDC_PASSWORD")
    group.addoption("--sddc-password-file", help="file holding the password for --sddc-username")
    group.addoption("--sddc-task", action="append", default=[], metavar="STATE=ID", help="a task to use")
    group.addoption("--sddc-tasks-file", help="JSON file mapping statuses to task ids")
    # Defaults are None so an ini value can fill in what the command line left out.
    group.addoption("--sddc-profile", choices=_PROFILES, default=None, help="schema | behavior | full (default: full)")
    group.addoption("--sddc-max-examples", type=int, default=None, help=f"default: {DEFAULT_MAX_EXAMPLES}")
    group.addoption("--sddc-seed", type=int, default=None)
    group.addoption("--sddc-discover", action="store_true", help="list tasks through GET /v1/tasks")
    group.addoption("--sddc-strict-urls", action="store_true",
                    help="a 400/414 for a URL-hostile id fails SCH-STATUS")
    group.addoption("--sddc-insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--sddc-ca-bundle", help="CA bundle to verify the target's certificate")
    group.addoption("--sddc-timeout", type=float, default=None,
                    help="seconds a whole request may take (connect, send, the whole answer); "
                    f"default: {DEFAULT_TIMEOUT}")
    group.addoption("--sddc-max-requests", type=int, default=None)
    group.addoption("--sddc-settle-timeout", type=float, default=None,
                    help="seconds a 200 cancel may take to read CANCELLED (default: 30; 5 embedded)")
    group.addoption("--sddc-rate-limit", type=float, default=None, help="requests per second at most")
    group.addoption("--sddc-concurrency", type=int, default=None, help="independent requests in flight at once")
    group.addoption("--sddc-spec", help="OpenAPI document whose Cancel Task is the contract (default: the shipped one)")
    group.addoption("--sddc-report-dir", help="also write the run's reports (junit, findings.json, html) here")
    for name, (kind, text) in INI.items():
        parser.addini(f"sddc_{name}", text, type=kind)  # type: ignore[arg-type]


def requirement_marker(requirement_id: str) -> str:
    """`BEH-RACE` -> `sddc_beh_race`: the marker that selects the tests evaluating a requirement."""
    return "sddc_" + requirement_id.lower().replace("-", "_")


def pytest_configure(config: pytest.Config) -> None:
    # Two generic markers only; the one-per-requirement markers are registered when conformance
    # tests are actually collected (see pytest_collection_modifyitems), so an unrelated project
    # pays nothing for them.
    config.addinivalue_line("markers", "sddc_profile(name): the run profile a conformance test belongs to")
    config.addinivalue_line("markers", "requirement(*ids): the requirements a conformance test evaluates")


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if _session(config) is not None:
        # `sddc-conformance run` chose its own rootdir and configuration.
        return
    from conformance.config.from_pytest import config_warning

    warning = config_warning(config)
    if warning is not None:
        # A pytest warning, so it shows in the warnings summary even under -q.
        config.issue_config_time_warning(pytest.PytestConfigWarning(warning), stacklevel=2)


def _session(config: pytest.Config) -> SuiteSession | None:
    from conformance.engine.runner import session_of

    return session_of(config)


@pytest.fixture(scope="session")
def sddc_session(request: pytest.FixtureRequest) -> Iterator[SuiteSession]:
    """The run's session: target, task pool, recorder and options, built from the --sddc-* options.

    Under `sddc-conformance run` it is the command's own session; in a plain pytest run this
    fixture opens it (and the embedded reference server without --sddc-base-url), and the run's
    verdict is judged from it once every test has run (see pytest_sessionfinish).
    """
    from conformance.engine.runner import SESSION_KEY, session_of

    config = request.config
    running = session_of(config)
    if running is not None:
        yield running
        return
    from conformance.config.from_pytest import options_from_pytest
    from conformance.engine.session import open_session

    def stopped_early(session: SuiteSession, exc: NoVerdict) -> None:
        # The target refused or never answered before anything was judged: NO VERDICT, with
        # reports of what was seen, as `sddc-conformance run` keeps them.
        config.stash[_OWNED] = session
        config.stash[_STOPPED] = f"target: {clean_line(str(exc))}"

    try:
        options = options_from_pytest(config)
        # Only the suite's own tests judge requirements; a run of the user's tests that use the
        # fixtures alone plans no MUST reserves (and is not refused for a budget it does not need).
        judges = any(_is_conformance_item(item) for item in request.session.items)
        with open_session(options, on_stopped=stopped_early, judges=judges) as session:
            config.stash[SESSION_KEY] = session
            config.stash[_OWNED] = session
            _show_target(config, session)
            yield session
            session.end_background()
    except (UsageError, NoVerdict) as exc:
        pytest.exit(f"sddc-conformance: {exc}", returncode=int(exc.exit_code))


# Set only when the sddc_session fixture opened the session (a plain pytest run): then this
# plugin owes the run its verdict. Under `sddc-conformance run` the command gives it instead.
_OWNED = pytest.StashKey["SuiteSession"]()
_STOPPED = pytest.StashKey[str]()
# At least one of the suite's own tests was selected: without them there is nothing to judge.
_SUITE_SELECTED = pytest.StashKey[bool]()
_RESULT = pytest.StashKey["RunResult"]()
_UNWRITTEN = pytest.StashKey[str]()


def _show_target(config: pytest.Config, session: SuiteSession) -> None:
    import contextlib

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        where = "embedded reference server " if session.embedded else ""
        # Fixtures run under output capture: without this the line lands in the captured buffer.
        hidden = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
        with hidden:
            reporter.ensure_newline()
            reporter.write_line(f"sddc-conformance: target {where}{session.target.base_url}, profile "
                                f"{session.options.profile}, seed {session.seed}")


# trylast: after pytest's own pytest_sessionfinish has torn the session fixture down (the
# background scenarios have ended), and before the terminal reporter writes its summary.
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    owned = config.stash.get(_OWNED, None)
    if owned is None or not config.stash.get(_SUITE_SELECTED, False):
        return
    from pathlib import Path

    from conformance.engine.runner import build_result
    from conformance.outcome import ExitCode, Verdict
    from conformance.report import write_reports

    stopped = config.stash.get(_STOPPED, None)
    if stopped is None and owned.fatal is not None:
        stopped = f"target: {clean_line(str(owned.fatal))}"
    if stopped is None and exitstatus == pytest.ExitCode.INTERRUPTED:
        stopped = "interrupted"
    result = build_result(owned, stopped=stopped)
    config.stash[_RESULT] = result
    report_dir = _report_dir(config)
    if report_dir:
        # The same reports as `sddc-conformance run`; the command writes its own.
        try:
            write_reports(result, Path(report_dir))
        except OSError as exc:
            config.stash[_UNWRITTEN] = f"cannot write reports to {report_dir}: {exc.strerror or exc}"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = int(ExitCode.USAGE_ERROR)
    # The exit status agrees with the verdict: a MUST can fail where no test failed (the
    # end-of-run re-reads), and NO VERDICT is never a success.
    if session.exitstatus == pytest.ExitCode.OK and result.verdict is not Verdict.CONFORMANT:
        session.exitstatus = int(result.verdict.exit_code)
    if exitstatus not in _SUMMARY_STATUSES:
        # pytest writes no terminal summary after pytest.exit(3): the verdict goes out here.
        _write_verdict(config, result)


# The exit statuses after which pytest's terminal reporter calls pytest_terminal_summary.
_SUMMARY_STATUSES = (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED,
                     pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    result = config.stash.get(_RESULT, None)
    if result is not None:
        _write_verdict(config, result)
    elif config.stash.get(_OWNED, None) is not None and not config.stash.get(_SUITE_SELECTED, False):
        # The fixtures alone judge nothing: no verdict word, and the exit status is pytest's own.
        terminalreporter.write_line("sddc-conformance: none of the suite's tests ran (--pyargs conformance.suite), "
                                    "so this run gives no verdict")


def _write_verdict(config: pytest.Config, result: RunResult) -> None:
    from conformance.outcome import Verdict
    from conformance.report.console import closing_line

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    colour = {Verdict.CONFORMANT: "green", Verdict.NOT_CONFORMANT: "red", Verdict.NO_VERDICT: "yellow"}
    reporter.write_sep("=", "sddc-conformance", bold=True)
    # The console's own closing line: the same words as every report. It carries target text.
    reporter.write_line(clean_line(closing_line(result)), bold=True, **{colour[result.verdict]: True})
    unwritten = config.stash.get(_UNWRITTEN, None)
    report_dir = _report_dir(config)
    if unwritten is not None:
        reporter.write_line(f"sddc-conformance: error: {clean_line(unwritten)}", red=True)
    elif report_dir:
        reporter.write_line(f"reports: {clean_line(report_dir)}")


def _report_dir(config: pytest.Config) -> str | None:
    from conformance.config.from_pytest import setting

    try:
        value = setting(config, "report_dir")
    except UsageError:
        return None
    return str(value) if value else None


@pytest.fixture(scope="session")
def sddc_target(sddc_session: SuiteSession) -> Target:
    """The run's bounded HTTP client (budget, rate limit, TLS, token): cancel(encoded_id, purpose=...),
    get_task(task_id, purpose=...) and send(...) return an Exchange (see docs/FIXTURES.md)."""
    return sddc_session.target


@pytest.fixture(scope="session")
def sddc_task_pool(sddc_session: SuiteSession) -> TaskPool:
    """The run's task ids: by_status(status), take_in_progress() (an IN_PROGRESS task now yours to
    cancel), non_cancellable(), known_ids() (see docs/FIXTURES.md)."""
    return sddc_session.pool


def _is_conformance_item(item: pytest.Item) -> bool:
    return item.get_closest_marker("sddc_profile") is not None or item.get_closest_marker("requirement") is not None


# tryfirst: the requirement markers must be on the items before pytest's own `-m` selection runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if _is_conformance_item(item)]
    if not ours:
        return
    from conformance import requirements
    from conformance.config.from_pytest import configured_profile
    from conformance.model import Profile

    for requirement in requirements.catalogue():
        config.addinivalue_line(
            "markers", f"{requirement_marker(requirement.id)}: evaluates {requirement.id} ({requirement.title})"
        )
    for item in ours:
        for mark in list(item.iter_markers("requirement")):
            for requirement_id in mark.args:
                item.add_marker(requirement_marker(requirement_id))
    running = _session(config)
    try:
        profile = running.options.profile if running is not None else configured_profile(config)
    except UsageError as exc:
        # An unreadable configuration file: one line, not an internal error of pytest.
        raise pytest.UsageError(f"sddc-conformance: {exc}") from None
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("sddc_profile")
        if marker is None or profile.includes(Profile(marker.args[0])):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Schema before behaviour, as the catalogue lists them, whatever the file names sort to.
    order = {p.value: i for i, p in enumerate(Profile)}
    items[:] = sorted(keep, key=lambda item: order.get(_profile_of(item), len(order)))


def _profile_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("sddc_profile")
    return str(marker.args[0]) if marker is not None else ""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _is_conformance_item(item):
        # One of the suite's tests is about to run (before its fixtures, which may stop the run):
        # the run owes a verdict (pytest_sessionfinish).
        item.config.stash[_SUITE_SELECTED] = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    except BudgetExhausted as exc:
        if not _is_conformance_item(item):
            raise
        running = _session(item.config)
        if running is not None:
            running.note(f"{exc}: the run stopped sending requests")
            running.budget_exhausted = True
        pytest.skip(str(exc))
    except NoVerdict as exc:
        if not _is_conformance_item(item):
            raise
        running = _session(item.config)
        if running is not None:
            running.fatal = exc
        pytest.exit(f"sddc-conformance: {exc}", returncode=int(exc.exit_code))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not _is_conformance_item(item):
        return report
    if report.failed and call.excinfo is not None and call.when == "call":
        from conformance.suite._assert import ConformanceFailure

        if call.excinfo.errisinstance(ConformanceFailure):
            # The suite's own message (requirement, finding, curl) is the whole story; the stack
            # of the suite's test function would only bury it.
            report.longrepr = str(call.excinfo.value)
    running = _session(item.config)
    # A conformance failure is a ConformanceFailure (an AssertionError); anything else is the suite's own bug.
    if (
        running is not None
        and report.failed
        and call.excinfo is not None
        and not call.excinfo.errisinstance((AssertionError, pytest.skip.Exception))
    ):
        running.internal_errors.append(f"{item.name}: {call.excinfo.exconly()[:300]}")
    return report


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if _session(config) is not None:
        # `sddc-conformance run` names its target itself (and hides pytest's header).
        return None
    from conformance.config.from_pytest import setting

    try:
        base = setting(config, "base_url")
    except UsageError:
        return None
    if base:
        return [f"sddc-conformance target: {base}"]
    if any("conformance.suite" in str(arg) for arg in config.args):
        return ["sddc-conformance target: the embedded reference server (no --sddc-base-url)"]
    return None


def __getattr__(name: str) -> Any:
    # Old import locations, kept for users' conftest files.
    if name == "options_from_pytest":
        from conformance.config.from_pytest import options_from_pytest

        return options_from_pytest
    raise AttributeError(name)

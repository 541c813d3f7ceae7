"""pytest plugin (entry point `pytest11`): run the conformance suite inside any pytest run.

    pytest --pyargs conformance.suite --sddc-base-url https://sddc.example --sddc-username admin@local

Without --sddc-base-url the embedded reference server is the target. `sddc-conformance run`
drives the same tests through this plugin; nothing here is a second implementation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import requirements
from conformance.options import DEFAULT_MAX_EXAMPLES, DEFAULT_TIMEOUT, OptionsError, RunOptions, RunProfile, tls_verify
from conformance.session import SuiteSession, active, open_session
from conformance.target import BudgetExhausted, Target, TargetError
from conformance.tasks import TaskPool, collect_tasks

# Every --sddc-* option can also be an ini option of the user's pytest configuration
# (`sddc_base_url = ...`); the command line beats the ini file. The token has no ini key on
# purpose: it belongs in SDDC_TOKEN, not in a committed file.
_INI: dict[str, tuple[str, str]] = {
    "base_url": ("string", "target base URL; default: the embedded reference server"),
    "username": ("string", "user for POST /v1/tokens; password from env SDDC_PASSWORD"),
    "password_file": ("string", "file holding the password for the user"),
    "task": ("linelist", "tasks to use, one STATE=ID a line"),
    "tasks_file": ("string", "JSON file mapping statuses to task ids"),
    "profile": ("string", "schema | behavior | full"),
    "max_examples": ("string", "generated ids to send"),
    "seed": ("string", "same seed, same requests"),
    "max_requests": ("string", "request budget of the whole run"),
    "rate_limit": ("string", "requests per second at most"),
    "timeout": ("string", "seconds per request"),
    "discover": ("bool", "list tasks through GET /v1/tasks"),
    "insecure": ("bool", "do not verify TLS certificates"),
    "ca_bundle": ("string", "CA bundle to verify the target's certificate"),
    "report_dir": ("string", "write the reports of a plain pytest run here"),
}
_PATHS = ("password_file", "tasks_file", "ca_bundle", "report_dir")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sddc-conformance", "SDDC Manager Cancel Task conformance")
    group.addoption("--sddc-base-url", help="target base URL; default: the embedded reference server")
    group.addoption("--sddc-token", help="bearer token (or env SDDC_TOKEN)")
    group.addoption("--sddc-username", help="user for POST /v1/tokens; password from env SDDC_PASSWORD")
    group.addoption("--sddc-password-file", help="file holding the password for --sddc-username")
    group.addoption("--sddc-task", action="append", default=[], metavar="STATE=ID", help="a task to use")
    group.addoption("--sddc-tasks-file", help="JSON file mapping statuses to task ids")
    # Defaults are None so an ini value can fill in what the command line left out.
    group.addoption("--sddc-profile", choices=[p.value for p in RunProfile], default=None,
                    help="schema | behavior | full (default: full)")
    group.addoption("--sddc-max-examples", type=int, default=None, help=f"default: {DEFAULT_MAX_EXAMPLES}")
    group.addoption("--sddc-seed", type=int, default=None)
    group.addoption("--sddc-discover", action="store_true", help="list tasks through GET /v1/tasks")
    group.addoption("--sddc-insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--sddc-ca-bundle", help="CA bundle to verify the target's certificate")
    group.addoption("--sddc-timeout", type=float, default=None, help=f"default: {DEFAULT_TIMEOUT}")
    group.addoption("--sddc-max-requests", type=int, default=None)
    group.addoption("--sddc-rate-limit", type=float, default=None, help="requests per second at most")
    group.addoption("--sddc-report-dir", help="also write the run's reports (junit, findings.json, html) here")
    for name, (kind, text) in _INI.items():
        parser.addini(f"sddc_{name}", text, type=kind)  # type: ignore[arg-type]


def requirement_marker(requirement_id: str) -> str:
    """`BEH-RACE` -> `sddc_beh_race`: the marker that selects the tests evaluating a requirement."""
    return "sddc_" + requirement_id.lower().replace("-", "_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sddc_profile(name): the run profile a conformance test belongs to")
    config.addinivalue_line("markers", "requirement(*ids): the requirements a conformance test evaluates")
    for requirement in requirements.catalogue():
        config.addinivalue_line(
            "markers", f"{requirement_marker(requirement.id)}: evaluates {requirement.id} ({requirement.title})"
        )


def setting(config: pytest.Config, name: str) -> Any:
    """An --sddc-* option, else its ini value, else None; ini numbers and paths converted."""
    value = config.getoption(f"sddc_{name}")
    if value not in (None, [], False):
        return value
    raw = config.getini(f"sddc_{name}")
    if raw in ("", [], False, None):
        return value
    if name in ("max_examples", "seed", "max_requests", "timeout", "rate_limit"):
        convert: type[int] | type[float] = float if name in ("timeout", "rate_limit") else int
        try:
            return convert(str(raw).strip())
        except ValueError:
            raise pytest.UsageError(f"ini option sddc_{name} must be a number, got {raw!r}") from None
    if name in _PATHS and config.inipath is not None:
        # Relative to the file that says it, as pytest does for its own path options.
        return str(config.inipath.parent / str(raw).strip())
    return raw.strip() if isinstance(raw, str) else raw


def options_from_pytest(config: pytest.Config) -> RunOptions:
    tasks = collect_tasks(setting(config, "tasks_file"), setting(config, "task") or [])
    password = os.environ.get("SDDC_PASSWORD")
    if setting(config, "password_file"):
        password = Path(setting(config, "password_file")).read_text(encoding="utf-8").strip()
    verify = tls_verify(bool(setting(config, "insecure")), setting(config, "ca_bundle"))
    max_examples = setting(config, "max_examples")
    timeout = setting(config, "timeout")
    return RunOptions(
        base_url=setting(config, "base_url"),
        token=config.getoption("sddc_token") or os.environ.get("SDDC_TOKEN"),
        username=setting(config, "username"),
        password=password,
        tasks=tasks,
        discover=bool(setting(config, "discover")),
        profile=_configured_profile(config),
        max_examples=DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples,
        seed=setting(config, "seed"),
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        max_requests=setting(config, "max_requests"),
        rate_limit=setting(config, "rate_limit"),
        verify=verify,
    )


def _configured_profile(config: pytest.Config) -> RunProfile:
    value = setting(config, "profile") or "full"
    try:
        return RunProfile(value)
    except ValueError:
        raise pytest.UsageError(f"sddc_profile must be schema, behavior or full, got {value!r}") from None


@pytest.fixture(scope="session")
def sddc_session(request: pytest.FixtureRequest) -> Iterator[SuiteSession]:
    """The run's target, task pool and recorder; built from --sddc-* options outside the CLI."""
    running = active()
    if running is not None:
        yield running
        return
    try:
        options = options_from_pytest(request.config)
        with open_session(options) as session:
            started = time.monotonic()
            yield session
            report_dir = setting(request.config, "report_dir")
            if report_dir:
                # A plain pytest run gets the same reports as `sddc-conformance run`; the CLI
                # writes its own, so this only happens when the fixture opened the session.
                from conformance.report import write_reports
                from conformance.runner import build_result

                write_reports(build_result(session, time.monotonic() - started), Path(report_dir))
    except (OptionsError, TargetError, ValueError) as exc:
        pytest.exit(f"sddc-conformance: {exc}", returncode=3 if isinstance(exc, TargetError) else 2)


@pytest.fixture(scope="session")
def sddc_target(sddc_session: SuiteSession) -> Target:
    """The bounded HTTP client of the run (budget, rate limit, TLS, token) for a user's own tests."""
    return sddc_session.target


@pytest.fixture(scope="session")
def sddc_task_pool(sddc_session: SuiteSession) -> TaskPool:
    """The run's task pool: handed-over, provisioned and discovered task ids by status."""
    return sddc_session.pool


def _profile(config: pytest.Config) -> RunProfile:
    running = active()
    if running is not None:
        return running.options.profile
    return _configured_profile(config)


# tryfirst: the requirement markers must be on the items before pytest's own `-m` selection runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in list(item.iter_markers("requirement")):
            for requirement_id in mark.args:
                item.add_marker(requirement_marker(requirement_id))
    profile = _profile(config)
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("sddc_profile")
        if marker is None or profile.includes(requirements.Profile(marker.args[0])):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Schema before behaviour, as the catalogue lists them, whatever the file names sort to.
    order = {p.value: i for i, p in enumerate(requirements.Profile)}
    items[:] = sorted(keep, key=lambda item: order.get(_profile_of(item), len(order)))


def _profile_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("sddc_profile")
    return str(marker.args[0]) if marker is not None else ""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    except BudgetExhausted as exc:
        running = active()
        if running is not None:
            running.note(f"{exc}: the run stopped sending requests")
        pytest.skip(str(exc))
    except TargetError as exc:
        running = active()
        if running is not None:
            running.fatal = exc
        pytest.exit(f"sddc-conformance: {exc}", returncode=3)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    running = active()
    # A conformance failure is an AssertionError; anything else is the suite's own bug.
    if (
        running is not None
        and report.failed
        and call.excinfo is not None
        and not call.excinfo.errisinstance((AssertionError, pytest.skip.Exception))
    ):
        running.internal_errors.append(f"{item.name}: {call.excinfo.exconly()[:300]}")
    return report

"""pytest plugin (entry point `pytest11`): run the conformance suite inside any pytest run.

    pytest --pyargs conformance.suite --sddc-base-url https://sddc.example --sddc-username admin@local

Without --sddc-base-url the embedded reference server is the target. `sddc-conformance run`
drives the same tests through this plugin; nothing here is a second implementation.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from conformance import requirements
from conformance.options import DEFAULT_MAX_EXAMPLES, OptionsError, RunOptions, RunProfile
from conformance.session import SuiteSession, active, open_session
from conformance.target import BudgetExhausted, TargetError
from conformance.tasks import load_tasks_file, parse_task_option


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sddc-conformance", "SDDC Manager Cancel Task conformance")
    group.addoption("--sddc-base-url", help="target base URL; default: the embedded reference server")
    group.addoption("--sddc-token", help="bearer token (or env SDDC_TOKEN)")
    group.addoption("--sddc-username", help="user for POST /v1/tokens; password from env SDDC_PASSWORD")
    group.addoption("--sddc-password-file", help="file holding the password for --sddc-username")
    group.addoption("--sddc-task", action="append", default=[], metavar="STATE=ID", help="a task to use")
    group.addoption("--sddc-tasks-file", help="JSON file mapping statuses to task ids")
    group.addoption("--sddc-profile", choices=[p.value for p in RunProfile], default="full")
    group.addoption("--sddc-max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    group.addoption("--sddc-seed", type=int, default=None)
    group.addoption("--sddc-discover", action="store_true", help="list tasks through GET /v1/tasks")
    group.addoption("--sddc-insecure", action="store_true", help="do not verify TLS certificates")
    group.addoption("--sddc-ca-bundle", help="CA bundle to verify the target's certificate")
    group.addoption("--sddc-timeout", type=float, default=10.0)
    group.addoption("--sddc-max-requests", type=int, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sddc_profile(name): the run profile a conformance test belongs to")
    config.addinivalue_line("markers", "requirement(*ids): the requirements a conformance test evaluates")


def options_from_pytest(config: pytest.Config) -> RunOptions:
    tasks: dict[str, list[str]] = {}
    if config.getoption("sddc_tasks_file"):
        tasks = load_tasks_file(Path(config.getoption("sddc_tasks_file")))
    for text in config.getoption("sddc_task"):
        status, task_id = parse_task_option(text)
        tasks.setdefault(status, []).append(task_id)
    password = os.environ.get("SDDC_PASSWORD")
    if config.getoption("sddc_password_file"):
        password = Path(config.getoption("sddc_password_file")).read_text(encoding="utf-8").strip()
    verify: bool | str = True
    if config.getoption("sddc_insecure"):
        verify = False
    elif config.getoption("sddc_ca_bundle"):
        verify = config.getoption("sddc_ca_bundle")
    return RunOptions(
        base_url=config.getoption("sddc_base_url"),
        token=config.getoption("sddc_token") or os.environ.get("SDDC_TOKEN"),
        username=config.getoption("sddc_username"),
        password=password,
        tasks=tasks,
        discover=config.getoption("sddc_discover"),
        profile=RunProfile(config.getoption("sddc_profile")),
        max_examples=config.getoption("sddc_max_examples"),
        seed=config.getoption("sddc_seed"),
        timeout=config.getoption("sddc_timeout"),
        max_requests=config.getoption("sddc_max_requests"),
        verify=verify,
    )


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
            yield session
    except (OptionsError, TargetError, ValueError) as exc:
        pytest.exit(f"sddc-conformance: {exc}", returncode=3 if isinstance(exc, TargetError) else 2)


def _profile(config: pytest.Config) -> RunProfile:
    running = active()
    if running is not None:
        return running.options.profile
    return RunProfile(config.getoption("sddc_profile"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
        items[:] = keep


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

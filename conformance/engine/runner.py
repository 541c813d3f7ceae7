"""Runs the suite's pytest tests against an open session and gathers the run's result."""

from __future__ import annotations

import contextlib
import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import conformance
from conformance.engine.session import SuiteSession
from conformance.errors import Interrupted, SuiteCrashed, TargetError
from conformance.outcome import RunResult
from conformance.spec import load_fragment

# Where a run's session travels to the suite's fixtures and hooks: pytest's own per-run store,
# not a module global, so two sessions never see each other.
SESSION_KEY = pytest.StashKey["SuiteSession"]()


class _SessionCarrier:
    """A plugin object registered for one pytest.main call: puts the session in config.stash."""

    def __init__(self, session: SuiteSession) -> None:
        self.session = session

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[SESSION_KEY] = self.session


def session_of(config: pytest.Config) -> SuiteSession | None:
    """The session of this pytest run, if one was opened (by the runner or the fixture)."""
    return config.stash.get(SESSION_KEY, None)


def pytest_args(extra: list[str] | None = None) -> list[str]:
    suite_dir = Path(__file__).resolve().parent.parent / "suite"
    return [
        "--pyargs",
        "conformance.suite",
        "-q",
        "-p",
        "no:cacheprovider",
        # Other installed pytest plugins (schemathesis' among them) cost seconds to import and
        # add nothing here; the run registers its own plugin module explicitly.
        "--disable-plugin-autoload",
        # The suite reports through its recorder, not pytest's assertion introspection.
        "--assert=plain",
        "--rootdir",
        str(suite_dir),
        "-c",
        os.devnull,
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        *(extra or []),
    ]


def execute(session: SuiteSession, *, echo: bool = False) -> RunResult:
    """Run the selected tests; findings go to the session's recorder, pytest's output is kept quiet."""
    sink = io.StringIO()
    redirect = contextlib.nullcontext() if echo else contextlib.redirect_stdout(sink)
    with redirect:
        # The plugin is named, not imported: the engine never imports the pytest plugin.
        code = pytest.main(pytest_args(["-p", "conformance.pytest_plugin"]), plugins=[_SessionCarrier(session)])
    if session.fatal is not None:
        raise session.fatal
    if code == pytest.ExitCode.INTERRUPTED:
        # pytest turned Ctrl-C (or SIGTERM, see engine.signals) into its own exit code.
        raise Interrupted("interrupted")
    if session.internal_errors:
        raise SuiteCrashed("; ".join(session.internal_errors))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        tail = "\n".join(sink.getvalue().strip().splitlines()[-15:])
        raise SuiteCrashed(f"the suite's tests could not run (pytest exit {int(code)}):\n{tail}")
    return build_result(session)


def build_result(session: SuiteSession, *, stopped: str | None = None) -> RunResult:
    """The run's result so far; `stopped` names why it ended without a verdict."""
    fragment = load_fragment()
    options = session.options
    return RunResult(
        suite_version=conformance.__version__,
        fragment_version=fragment.version,
        fragment_sha256=fragment.sha256,
        target_url=session.target.base_url,
        embedded_target=session.embedded,
        profile=str(options.profile),
        seed=session.seed,
        max_examples=options.max_examples,
        started_at=session.started_at.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        duration_seconds=time.monotonic() - session.started_monotonic,
        requests_sent=session.target.requests_sent,
        exchanges_checked=session.recorder.exchanges,
        results=tuple(session.recorder.results(session.selected())),
        notes=tuple(session.notes),
        strict=options.strict,
        certify=options.certify,
        defects=tuple(options.defects),
        product=session.product,
        stopped=stopped,
        coverage=session.coverage(),
    )


__all__ = ["SESSION_KEY", "SuiteCrashed", "TargetError", "build_result", "execute", "pytest_args", "session_of"]

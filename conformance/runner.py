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
from conformance.findings import RunResult
from conformance.session import SuiteSession, activated
from conformance.spec import load_fragment
from conformance.target import TargetError


class SuiteCrashed(RuntimeError):
    """pytest could not run the suite itself (a bug in the suite, not a finding): exit code 4."""


def pytest_args(extra: list[str] | None = None) -> list[str]:
    suite_dir = Path(__file__).parent / "suite"
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
    from conformance import pytest_plugin

    started = time.monotonic()
    sink = io.StringIO()
    with activated(session):
        redirect = contextlib.nullcontext() if echo else contextlib.redirect_stdout(sink)
        with redirect:
            code = pytest.main(pytest_args(), plugins=[pytest_plugin])
    if session.fatal is not None:
        raise session.fatal
    if session.internal_errors:
        raise SuiteCrashed("; ".join(session.internal_errors))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        tail = "\n".join(sink.getvalue().strip().splitlines()[-15:])
        raise SuiteCrashed(f"the suite's tests could not run (pytest exit {int(code)}):\n{tail}")
    return build_result(session, time.monotonic() - started)


def build_result(session: SuiteSession, duration: float) -> RunResult:
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
        duration_seconds=duration,
        requests_sent=session.target.requests_sent,
        exchanges_checked=session.recorder.exchanges,
        results=tuple(session.recorder.results(session.selected())),
        notes=tuple(session.notes),
        strict=options.strict,
        certify=options.certify,
        defects=tuple(options.defects),
        product=session.product,
    )


__all__ = ["SuiteCrashed", "TargetError", "build_result", "execute", "pytest_args"]

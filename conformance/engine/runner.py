"""Runs the suite's pytest tests against an open session and gathers the run's result."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import conformance
from conformance.engine.session import SuiteSession
from conformance.errors import Interrupted, SuiteCrashed, TargetError
from conformance.options import DEFAULT_MAX_REQUESTS, DEFAULT_TIMEOUT
from conformance.outcome import RunResult, token_recipe
from conformance.spec import load_fragment
from conformance.text import clean_line

# Where a run's session travels to the suite's fixtures and hooks: pytest's own per-run store,
# not a module global, so two sessions never see each other.
SESSION_KEY = pytest.StashKey["SuiteSession"]()


class _SessionCarrier:
    """A plugin object registered for one pytest.main call: puts the session in config.stash."""

    def __init__(self, session: SuiteSession) -> None:
        self.session = session

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[SESSION_KEY] = self.session

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # What the imports and collection built lives as long as the run. Frozen, the collector
        # stops walking it: Hypothesis calls gc.collect() in every thread that first runs a test,
        # and each full pass over the whole heap cost about 0.05 s (0.2 s a run). execute()
        # unfreezes it, so an in-process caller gets its memory back.
        gc.freeze()


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
        # Its teardown collects garbage harder (several full gc passes, ~0.4 s a run) to turn
        # unraisable exceptions into warnings; a run reports through its recorder instead.
        "-p",
        "no:unraisableexception",
        # Other installed pytest plugins (schemathesis' among them) cost seconds to import and
        # add nothing here; the run registers its own plugin module explicitly.
        "--disable-plugin-autoload",
        # The suite reports through its recorder, not pytest's assertion introspection.
        "--assert=plain",
        # Without a path to collect, pytest would load conftest.py files from the directory the
        # user runs in (and its test*/ subdirectories): a project's fixtures and hooks have no
        # business in a conformance run, and one that fails to import would end it.
        "--noconftest",
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
        # What the imports and the open session built lives as long as the run: frozen now, a
        # full collection while pytest configures itself (about 50 ms, before the first scenario)
        # skips it. Collection finishing freezes again what collecting built.
        gc.freeze()
        # The plugin is named, not imported: the engine never imports the pytest plugin.
        try:
            code = pytest.main(pytest_args(["-p", "conformance.pytest_plugin"]),
                               plugins=[_SessionCarrier(session)])
        finally:
            # A run that stopped early (an exit, an interrupt) leaves no scenario sending.
            session.end_background()
            gc.unfreeze()
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
    contract = session.contract
    rerun = rerun_command(session)
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
        # Document text is untrusted: one clean line in every report.
        contract_title=clean_line(contract.title),
        contract_version=clean_line(contract.version),
        contract_sha256=contract.sha256,
        contract_source=None if contract is fragment else clean_line(contract.path.name),
        rerun=rerun[0],
        rerun_notes=rerun[1],
        cancel_mode=session.cancels.mode(),
        stateful_rules=dict(session.stateful_rules),
        coverage=session.coverage(),
        behaviour=session.behaviour_profile(),
        recording=tuple(session.behaviour.recording),
    )


def rerun_command(session: SuiteSession) -> tuple[str, tuple[str, ...]]:
    """The command that re-runs this run (same seed, profile, options) and what it needs first."""
    options = session.options
    words = ["sddc-conformance", "run"]
    notes: list[str] = []
    if session.embedded:
        words += [f"--defect={d}" for d in options.defects]
    else:
        words += ["--base-url", options.base_url or session.target.base_url]
        if options.token:
            # The shell expands it: the value never appears in a report.
            words.append('--token "${SDDC_TOKEN}"')
            notes.append("set SDDC_TOKEN to a fresh token first")
        elif options.username:
            words += ["--username", options.username]
            notes.append("set SDDC_PASSWORD (the password is never put on a command line); for the curl "
                         "reproductions: " + token_recipe(session.target.base_url, options.username))
        cancelled = cancelled_tasks(session)
        if options.tasks_file is not None:
            # The file as the user gave it (not dozens of --task flags), and their own --task flags.
            words += ["--tasks-file", str(options.tasks_file)]
            words += [f"--task={flag}" for flag in options.task_flags]
        else:
            # The pool, not the options: the preflight moved tasks to the status they really have.
            # Tasks this run cancelled are left out: they cannot be cancelled again.
            for status, ids in sorted(session.pool.given.items()):
                words += [f"--task={status}={task_id}" for task_id in ids if task_id not in cancelled]
        if cancelled:
            where = "in the tasks file" if options.tasks_file is not None else "as --task IN_PROGRESS=<id>"
            shown = ", ".join(clean_line(t) for t in cancelled[:3]) + (
                f" and {len(cancelled) - 3} more" if len(cancelled) > 3 else "")
            notes.append(f"this run cancelled {len(cancelled)} IN_PROGRESS task{'s' if len(cancelled) != 1 else ''} "
                         f"({shown}): hand over fresh ones {where}")
        if session.target.base_url.split("://", 1)[-1].startswith(("127.0.0.1", "localhost", "[::1]")):
            notes.append("if the target is `sddc-conformance serve`, start it again first "
                         "(with the same --defect and --state-file)")
    if options.spec is not None:
        words += ["--spec", str(options.spec)]
    words += ["--profile", str(options.profile), "--seed", str(session.seed),
              "--max-examples", str(options.max_examples)]
    if options.max_requests is not None and options.max_requests != DEFAULT_MAX_REQUESTS:
        words += ["--max-requests", str(options.max_requests)]
    if options.rate_limit is not None:
        words += ["--rate-limit", str(options.rate_limit)]
    if options.timeout != DEFAULT_TIMEOUT:
        words += ["--timeout", str(options.timeout)]
    if options.verify is False:
        words.append("--insecure")
    elif isinstance(options.verify, str):
        words += ["--ca-bundle", options.verify]
    for flag, on in (("--discover", options.discover), ("--allow-cancel-discovered", options.allow_cancel_discovered),
                     ("--strict", options.strict), ("--certify", options.certify)):
        if on:
            words.append(flag)
    quoted = [w if w.startswith("--token ") else shlex.quote(w) for w in words]
    return " ".join(quoted), tuple(notes)


def cancelled_tasks(session: SuiteSession) -> list[str]:
    """Handed-over tasks this run cancelled (a cancel answered 200), in the order it cancelled them."""
    ledger = session.cancels
    cancelled = list(dict.fromkeys([*session.cancelled_by_suite,
                                    *(t for t, kinds in ledger.since.items() if any(c for c, _ in kinds))]))
    given = {task_id for ids in session.pool.given.values() for task_id in ids}
    # A task the embedded reference server created for the run was never the user's to replace.
    return [task_id for task_id in cancelled if task_id in given]


__all__ = ["SESSION_KEY", "SuiteCrashed", "TargetError", "build_result", "execute", "pytest_args", "session_of"]

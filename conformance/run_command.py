"""`sddc-conformance run`: options -> session -> suite -> reports -> exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conformance.cli import (
    EXIT_INTERNAL,
    EXIT_NOT_CONFORMANT,
    EXIT_OK,
    EXIT_TARGET,
    EXIT_USAGE,
    default_report_dir,
)
from conformance.console import print_summary
from conformance.findings import RunResult
from conformance.options import (
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_MAX_REQUESTS,
    OptionsError,
    RunOptions,
    RunProfile,
    tls_verify,
)
from conformance.progress import progress
from conformance.report import write_reports
from conformance.runner import SuiteCrashed, build_result, execute
from conformance.session import SuiteSession, open_session
from conformance.target import TargetError
from conformance.tasks import TasksFileError, collect_tasks


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


def build_options(params: dict[str, Any]) -> RunOptions:
    tasks = collect_tasks(params.get("tasks_file"), params.get("task_options") or ())
    if params.get("insecure") and params.get("ca_bundle"):
        raise OptionsError("--insecure and --ca-bundle contradict each other")
    verify = tls_verify(bool(params.get("insecure")), params.get("ca_bundle"))
    if params.get("base_url") is None and (params.get("token") or params.get("username") or tasks):
        raise OptionsError("--token, --username and --task/--tasks-file need --base-url")
    return RunOptions(
        base_url=params.get("base_url"),
        token=params.get("token"),
        username=params.get("username"),
        password=params.get("password") if params.get("username") else None,
        tasks=tasks,
        discover=bool(params.get("discover")),
        allow_cancel_discovered=bool(params.get("allow_cancel_discovered")),
        profile=RunProfile(params.get("profile") or "full"),
        max_examples=params.get("max_examples") or DEFAULT_MAX_EXAMPLES,
        seed=params.get("seed"),
        max_requests=params.get("max_requests") or DEFAULT_MAX_REQUESTS,
        rate_limit=params.get("rate_limit"),
        timeout=params.get("timeout") or 10.0,
        verify=verify,
        strict=bool(params.get("strict")),
        certify=bool(params.get("certify")),
        dry_run=bool(params.get("dry_run")),
        report_dir=Path(params["report_dir"]) if params.get("report_dir") else None,
        defects=tuple(params.get("defects") or ()),
    ).validate()


def _write(run: RunResult, directory: Path) -> bool:
    try:
        write_reports(run, directory)
        return True
    except OSError as exc:
        _echo_err(f"sddc-conformance: error: cannot write reports to {directory}: {exc.strerror or exc}")
        return False


def run_command(**params: Any) -> int:
    quiet = bool(params.get("quiet"))
    try:
        options = build_options(params)
    except (OptionsError, TasksFileError) as exc:
        _echo_err(f"sddc-conformance: error: {exc}")
        return EXIT_USAGE
    if options.verify is False:
        _echo_err("sddc-conformance: warning: --insecure: the target's TLS certificate is not verified")
    report_dir = options.report_dir or default_report_dir()
    session: SuiteSession | None = None
    try:
        with open_session(options) as session:
            if options.dry_run:
                from conformance.plan import print_plan

                print_plan(session, click.echo)
                return EXIT_OK
            try:
                with progress(session, quiet=quiet, secrets=(options.token, options.password)):
                    run = execute(session)
            except TargetError as exc:
                # Keep what the run learned before the target went away.
                session.note(f"run stopped: {exc}")
                partial = build_result(session, 0.0)
                if _write(partial, report_dir):
                    _echo_err(f"sddc-conformance: partial reports in {report_dir}")
                raise
    except TargetError as exc:
        _echo_err(f"sddc-conformance: error: {exc}")
        return EXIT_TARGET
    except (OptionsError, ValueError) as exc:
        _echo_err(f"sddc-conformance: error: {exc}")
        return EXIT_USAGE
    except SuiteCrashed as exc:
        _echo_err(f"sddc-conformance: internal error: {exc}")
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        _echo_err("sddc-conformance: interrupted")
        return 130
    written = _write(run, report_dir)
    if quiet:
        click.echo(f"{run.verdict}: {run.requests_sent} requests, seed {run.seed}")
    else:
        print_summary(run, click.echo, report_dir=str(report_dir) if written else None)
    if not written:
        return EXIT_USAGE
    return EXIT_OK if run.conformant else EXIT_NOT_CONFORMANT




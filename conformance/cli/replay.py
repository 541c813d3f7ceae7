"""`sddc-conformance replay`: re-send a report's failing requests to a (fixed) target.

A report is input from whoever handed it over. Replay therefore sends credentials only to the
target the user names with --base-url, takes a token only from --token (never silently from
SDDC_TOKEN), and prints only the new target's URLs, cleaned of terminal controls.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from conformance.cli.group import cli, connection_options
from conformance.engine import replay as replay_engine
from conformance.engine.replay import ReplayError, Verdict, load_report, recorded_target, replay_target_url
from conformance.engine.target import TargetConfig
from conformance.errors import OptionsError, SddcError, TargetError
from conformance.options import RunOptions, read_password
from conformance.outcome import ExitCode, exit_codes_epilog
from conformance.tasks import collect_tasks
from conformance.text import clean_line, public_url

REPLAY_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "every failure was re-checked and is fixed",
        ExitCode.NOT_CONFORMANT: "at least one failure still fails",
        ExitCode.USAGE_ERROR: "usage error: no readable findings.json, an unsafe recorded request, credentials "
        "without --base-url, or a failure that cannot be re-checked without more input "
        "(not replayable: ... pass --task IN_PROGRESS=...)",
        ExitCode.NO_VERDICT: "target unreachable or authentication failed",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR, ExitCode.NO_VERDICT),
)


@cli.command(epilog=REPLAY_EXIT_CODES)
@click.argument("report", type=click.Path(exists=True, path_type=Path))
@click.option("--base-url", metavar="URL",
              help="Target to replay against; required with --token or --username "
              "[default without credentials: the recorded target].")
@click.option("--token", help="Bearer token for the target (explicit only: SDDC_TOKEN is never read; "
              "pass --token \"$SDDC_TOKEN\").")
@click.option(
    "--username", help="User for POST /v1/tokens; the password comes from env SDDC_PASSWORD or --password-file."
)
@click.option("--password-file", type=click.Path(dir_okay=False), help="File holding the password.")
@click.option("--task", "task_options", multiple=True, metavar="STATE=ID",
              help="A task a scenario may use when re-checked (IN_PROGRESS ones WILL be cancelled).")
@click.option("--tasks-file", type=click.Path(dir_okay=False), help="Tasks as for `run --tasks-file`.")
@connection_options
def replay(**kwargs: Any) -> None:
    """Re-send the failing requests of a report (directory or findings.json) and re-judge the answers.

    Scenario failures (BEH-*, AUTH-*) are re-checked by running the scenario again against
    --base-url; one that lacks a task it needs (--task IN_PROGRESS=ID, --task SUCCESSFUL=ID or
    --tasks-file) is said once, before anything is sent, and nothing is sent for it.
    """
    password_file = kwargs.pop("password_file")
    try:
        password = read_password(password_file, os.environ) if kwargs.get("username") else None
        tasks = collect_tasks(kwargs.pop("tasks_file"), kwargs.pop("task_options"))
    except OptionsError as exc:
        sys.exit(_error(str(exc), ExitCode.USAGE_ERROR))
    except SddcError as exc:
        sys.exit(_error(str(exc), exc.exit_code))
    sys.exit(replay_command(**kwargs, password=password, tasks=tasks))


def replay_command(
    *,
    report: Path,
    base_url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    ca_bundle: str | None,
    insecure: bool,
    timeout: float,
    tasks: dict[str, list[str]] | None = None,
) -> int:
    """`sddc-conformance replay`: returns the exit code documented in REPLAY_EXIT_CODES."""
    problem = _usage_problem(base_url, username, password, ca_bundle, insecure)
    if problem:
        return _error(problem, ExitCode.USAGE_ERROR)
    try:
        document = load_report(report)
        if base_url is None and (token or username):
            recorded = clean_line(public_url(recorded_target(document) or "(none)"))
            raise ReplayError(
                f"credentials go only to a target you name: pass --base-url (the report records {recorded})"
            )
        url = replay_target_url(document, base_url)
        replay_engine.check_recorded_requests(document)
    except ReplayError as exc:
        return _error(str(exc), ExitCode.USAGE_ERROR)
    if insecure:
        click.echo("sddc-conformance: warning: --insecure: the target's TLS certificate is not verified",
                   err=True)
    verify: bool | str = False if insecure else (ca_bundle or True)
    config = TargetConfig(base_url=url, token=token, username=username, password=password,
                          verify=verify, timeout=timeout)
    options = RunOptions(base_url=url, token=token, username=username, password=password,
                         tasks=tasks or {}, verify=verify, timeout=timeout)
    click.echo(clean_line(f"replaying {report} against {public_url(url)}"))
    if token:
        click.echo("credentials: the token given with --token")
    elif username:
        click.echo(clean_line(f"credentials: user {username} through POST /v1/tokens"))
    try:
        results = replay_engine.replay(
            document, config, on_outcome=lambda r: click.echo(r.line()),
            scenario_runner=replay_engine.scenario_runner(options),
        )
    except ReplayError as exc:
        return _error(str(exc), ExitCode.USAGE_ERROR)
    except TargetError as exc:
        return _error(str(exc), ExitCode.NO_VERDICT)
    except SddcError as exc:
        return _error(str(exc), exc.exit_code)
    still = sum(1 for r in results if r.verdict is Verdict.STILL_FAILS)
    fixed = sum(1 for r in results if r.verdict is Verdict.FIXED)
    unchecked = len(results) - still - fixed
    click.echo(f"{still} still fail, {fixed} fixed, {unchecked} not replayable")
    if still:
        return ExitCode.NOT_CONFORMANT
    # Nothing re-checked (or some failures not re-checked) is never "fixed": exit 0 would be a lie.
    if unchecked or not results:
        return _error(f"{unchecked} failure(s) were not re-checked", ExitCode.USAGE_ERROR)
    return ExitCode.OK


def _usage_problem(
    base_url: str | None, username: str | None, password: str | None, ca_bundle: str | None, insecure: bool
) -> str | None:
    if insecure and ca_bundle:
        return "--insecure and --ca-bundle contradict each other"
    if base_url is not None:
        try:
            RunOptions(base_url=base_url).validate()
        except OptionsError as exc:
            return str(exc)
    if username and not password:
        return "--username needs a password: set SDDC_PASSWORD or pass --password-file"
    return None


def _error(message: str, code: ExitCode) -> int:
    click.echo(f"sddc-conformance: error: {clean_line(message)}", err=True)
    return int(code)

"""`sddc-conformance replay`: re-send a report's failing requests to a (fixed) target."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from conformance.cli.group import cli, connection_options
from conformance.engine import replay as replay_engine
from conformance.engine.replay import ReplayError, Verdict, load_report, replay_target_url
from conformance.engine.target import TargetConfig
from conformance.errors import OptionsError, TargetError
from conformance.options import read_password
from conformance.outcome import ExitCode, exit_codes_epilog

REPLAY_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "every failure was re-checked and is fixed",
        ExitCode.NOT_CONFORMANT: "at least one failure still fails",
        ExitCode.USAGE_ERROR: "usage error: no readable findings.json, an unsafe recorded request, or a failure "
        "that cannot be re-checked without more input (e.g. --task IN_PROGRESS=...)",
        ExitCode.NO_VERDICT: "target unreachable or authentication failed",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR, ExitCode.NO_VERDICT),
)


@cli.command(epilog=REPLAY_EXIT_CODES)
@click.argument("report", type=click.Path(exists=True, path_type=Path))
@click.option("--base-url", metavar="URL", help="Target to replay against [default: the recorded target].")
@click.option("--token", envvar="SDDC_TOKEN", show_envvar=True, help="Bearer token for the target.")
@click.option(
    "--username", help="User for POST /v1/tokens; the password comes from env SDDC_PASSWORD or --password-file."
)
@click.option("--password-file", type=click.Path(dir_okay=False), help="File holding the password.")
@connection_options
def replay(**kwargs: Any) -> None:
    """Re-send the failing requests of a report (directory or findings.json) and re-judge the answers."""
    password_file = kwargs.pop("password_file")
    try:
        password = read_password(password_file, os.environ) if kwargs.get("username") else None
    except OptionsError as exc:
        sys.exit(_error(str(exc), ExitCode.USAGE_ERROR))
    sys.exit(replay_command(**kwargs, password=password))




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
) -> int:
    """`sddc-conformance replay`: returns the exit code documented in REPLAY_EXIT_CODES."""
    problem = _usage_problem(base_url, username, password, ca_bundle, insecure)
    if problem:
        return _error(problem, ExitCode.USAGE_ERROR)
    if insecure:
        click.echo("sddc-conformance: warning: --insecure: the target's TLS certificate is not verified",
                   err=True)
    try:
        document = load_report(report)
        url = replay_target_url(document, base_url)
    except ReplayError as exc:
        return _error(str(exc), ExitCode.USAGE_ERROR)
    config = TargetConfig(base_url=url, token=token, username=username, password=password,
                          verify=False if insecure else (ca_bundle or True), timeout=timeout)
    click.echo(f"replaying {report} against {url}")
    try:
        results = replay_engine.replay(document, config, on_outcome=lambda r: click.echo(r.line()))
    except TargetError as exc:
        return _error(str(exc), ExitCode.NO_VERDICT)
    still = sum(1 for r in results if r.verdict is Verdict.STILL_FAILS)
    fixed = sum(1 for r in results if r.verdict is Verdict.FIXED)
    click.echo(f"{still} still fail, {fixed} fixed, {len(results) - still - fixed} not replayable")
    return ExitCode.NOT_CONFORMANT if still else ExitCode.OK


def _usage_problem(
    base_url: str | None, username: str | None, password: str | None, ca_bundle: str | None, insecure: bool
) -> str | None:
    if insecure and ca_bundle:
        return "--insecure and --ca-bundle contradict each other"
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        return f"--base-url {base_url!r} must start with http:// or https://"
    if username and not password:
        return "--username needs a password: set SDDC_PASSWORD or pass --password-file"
    return None


def _error(message: str, code: ExitCode) -> int:
    click.echo(f"sddc-conformance: error: {message}", err=True)
    return int(code)

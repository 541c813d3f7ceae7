"""`sddc-conformance run`: options -> session -> suite -> reports -> exit code.

Only this module (and the rest of `conformance.cli`) turns a run's verdict or error into an exit
code, through `ExitCode`; the engine raises errors from `conformance.errors` and returns results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conformance.cli.group import EXIT_CODES, OWN_PROCESS, cli, connection_options
from conformance.config.from_click import build_options
from conformance.engine.draws import DrawnIds
from conformance.engine.embedded import EmbeddedServer
from conformance.engine.signals import interrupts_as_exceptions
from conformance.errors import Interrupted, SddcError, TargetError, UsageError
from conformance.files import default_report_dir, discard_report_dir, missing_directories, prepare_report_dir
from conformance.model import Profile
from conformance.options import DEFAULT_CONCURRENCY, RunOptions
from conformance.outcome import ExitCode, RunResult
from conformance.text import clean_line, public_url

if TYPE_CHECKING:
    from conformance.engine.session import SuiteSession

# The engine's runner and session (pytest, Hypothesis: most of a second of imports) and the
# reports load inside the command, after the helper processes have been started: they get going
# on other cores meanwhile.


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


def _one_line(exc: SddcError) -> str:
    kind = "internal error" if exc.exit_code is ExitCode.INTERNAL_ERROR else "error"
    return f"sddc-conformance: {kind}: {clean_line(str(exc))}"


def _write(run: RunResult, directory: Path) -> bool:
    from conformance.report import write_reports

    try:
        write_reports(run, directory)
        return True
    except OSError as exc:
        _echo_err(f"sddc-conformance: error: cannot write reports to {directory}: {exc.strerror or exc}")
        return False


def _stopped(session: SuiteSession, report_dir: Path, reason: str) -> bool:
    """Keep what the run saw before it stopped: reports that say NO VERDICT and why."""
    from conformance.engine.runner import build_result

    return _write(build_result(session, stopped=reason), report_dir)


def run_command(*, own_process: bool = False, **params: Any) -> int:
    """Run the suite once; return the documented exit code. Every error ends in one line.

    `own_process`: the run is the process's whole life (the command line's entry point), so it
    starts helper processes that work on other cores (the embedded server, the drawing of
    generated ids). An in-process caller (a test, a script) has the libraries they would spare it
    loaded already: it serves and draws in its own process, as the pytest plugin does.
    """
    quiet = bool(params.get("quiet"))
    report_dir: Path | None = None
    made: list[Path] = []
    try:
        options = build_options(params)
        if not options.dry_run:
            wanted = options.report_dir or default_report_dir()
            made = missing_directories(wanted)
            report_dir = prepare_report_dir(wanted)
    except SddcError as exc:
        _echo_err(f"sddc-conformance: error: {clean_line(str(exc))}")
        return int(exc.exit_code)
    # Helper processes, started before the suite loads so they get going on other cores: the
    # embedded server, and the drawing of generated ids (which needs the seed now).
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    options = dataclasses.replace(options, seed=seed)
    embedded = draws = None
    try:
        try:
            if own_process and not options.dry_run:
                if options.base_url is None:
                    embedded = EmbeddedServer(options.defects, options.reference_settle_seconds)
                if options.profile.includes(Profile.SCHEMA):
                    draws = DrawnIds(seed, options.max_examples, options.spec)
        except SddcError as exc:  # a helper that cannot start (SuiteCrashed)
            _echo_err(_one_line(exc))
            code = int(exc.exit_code)
        else:
            code = _run(options, report_dir, quiet, embedded, draws, own_process)
    finally:
        for helper in (draws, embedded):
            if helper is not None:
                helper.stop()
    if code == ExitCode.USAGE_ERROR and report_dir is not None:
        # A usage error found later (a bad --defect, stale task ids) leaves no empty report directory.
        discard_report_dir(made)
    return code


@contextlib.contextmanager
def collector_paused(*, freeze: bool) -> Iterator[None]:
    """No cyclic garbage collection in the block; with `freeze`, what it built is frozen after.

    Loading pytest, requests and jsonschema allocates objects that live as long as the process;
    the collector would walk them over and over on the way to the first request (about 0.1 s of
    collections, the last a full one), and once more when it resumed, had they not been frozen.
    Only a process that is the run's alone freezes (the runner thaws the heap when the run ends);
    an in-process caller has these modules loaded already, and its collector is left as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def _run(options: RunOptions, report_dir: Path | None, quiet: bool, embedded: EmbeddedServer | None,
         draws: DrawnIds | None, own_process: bool) -> int:
    with collector_paused(freeze=own_process):
        from conformance.cli.progress import progress
        from conformance.engine.runner import execute
        from conformance.engine.session import open_session
        from conformance.report.console import print_summary

    if options.verify is False:
        _echo_err("sddc-conformance: warning: --insecure: the target's TLS certificate is not verified")
    session: SuiteSession | None = None
    # Where the NO VERDICT reports of a stopped run went, for the one error line.
    kept: list[Path] = []

    def keep(stopped_session: SuiteSession, reason: str) -> None:
        stopped_session.note(f"run stopped: {reason}")
        if report_dir is not None and _stopped(stopped_session, report_dir, reason):
            kept.append(report_dir)

    def before_start(stopped_session: SuiteSession, exc: TargetError) -> None:
        keep(stopped_session, f"target: {clean_line(str(exc))}")

    def interrupted_before_start(stopped_session: SuiteSession) -> None:
        keep(stopped_session, "interrupted")

    try:
        with interrupts_as_exceptions(), open_session(options, on_stopped=before_start,
                                                           on_interrupted=interrupted_before_start,
                                                           embedded=embedded, draws=draws) as session:
            if options.dry_run or report_dir is None:
                from conformance.engine.plan import print_plan

                print_plan(session, click.echo)
                return int(ExitCode.OK)
            if not quiet:
                # First, before any progress line: what is being tested, and how to get it again.
                where = " (embedded reference server)" if session.embedded else ""
                click.echo(f"sddc-conformance: target {public_url(session.target.base_url)}{where}, profile "
                           f"{options.profile}, seed {session.seed}, budget {options.max_requests} requests")
            try:
                with progress(session, quiet=quiet, secrets=(options.token, options.password)):
                    run = execute(session)
            except TargetError as exc:
                keep(session, f"target: {clean_line(str(exc))}")
                raise
            except Interrupted:
                keep(session, "interrupted")
                raise
    except SddcError as exc:
        where = f", reports in {kept[0]}" if kept else ""
        if isinstance(exc, Interrupted):
            _echo_err(f"sddc-conformance: interrupted: NO VERDICT{where}")
        elif isinstance(exc, TargetError):
            _echo_err(f"sddc-conformance: error: {clean_line(str(exc))}; NO VERDICT{where}")
        else:
            _echo_err(_one_line(exc))
        return int(exc.exit_code)
    written = _write(run, report_dir)
    if quiet:
        click.echo(f"{run.headline}: {run.requests_sent} requests in {run.duration_seconds:.1f} s, seed {run.seed}")
    else:
        print_summary(run, click.echo, report_dir=str(report_dir) if written else None)
    if not written:
        return int(ExitCode.USAGE_ERROR)
    return int(run.verdict.exit_code)


def _apply_config_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Eager, so the file becomes the defaults of every option parsed after it: click then gives
    # command line > environment > file > built-in default by itself.
    from conformance.config.file import load_for_run

    try:
        loaded = load_for_run(value)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if loaded is not None:
        ctx.default_map = {**(ctx.default_map or {}), **loaded.default_map()}
    return value


@cli.command(epilog=EXIT_CODES)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=True,
    callback=_apply_config_file,
    help="Options file [default: ./sddc-conformance.toml, or [tool.sddc-conformance] in ./pyproject.toml].",
)
@click.option(
    "--targets",
    type=click.Path(dir_okay=False),
    help="TOML/JSON file listing several targets to check in parallel (reports per target + index).",
)
@click.option(
    "--shard",
    metavar="K/N",
    help="With --targets: run only the K-th of N slices (target i goes to shard i mod N + 1), for a CI matrix.",
)
@click.option(
    "--base-url",
    metavar="URL",
    envvar="SDDC_BASE_URL",
    show_envvar=True,
    help="Target base URL. Default: start the embedded reference server.",
)
@click.option("--token", envvar="SDDC_TOKEN", show_envvar=True, help="Bearer token for the target.")
@click.option(
    "--username", help="User for POST /v1/tokens; the password comes from env SDDC_PASSWORD or --password-file."
)
@click.option("--password-file", type=click.Path(dir_okay=False), help="File holding the password.")
@click.option(
    "--task", "task_options", multiple=True, metavar="STATE=ID", help="A task the suite may use (repeatable)."
)
@click.option(
    "--tasks-file",
    type=click.Path(dir_okay=False),
    help="JSON mapping statuses to task ids (serve's --state-file works).",
)
@click.option("--discover", is_flag=True, help="Find tasks read-only through GET /v1/tasks.")
@click.option("--allow-cancel-discovered", is_flag=True, help="Let the suite cancel discovered IN_PROGRESS tasks.")
@click.option("--profile", type=click.Choice(["schema", "behavior", "full"]), default="full", show_default=True)
@click.option("--certify", is_flag=True, help="Fail unless every MUST requirement was exercised and passed.")
@click.option("--strict", is_flag=True, help="A failed SHOULD fails the run.")
@click.option("--strict-urls", is_flag=True, help="A 400/414 for a URL-hostile id fails SCH-STATUS.")
@click.option("--max-examples", type=click.IntRange(min=1), default=None, help="Generated ids to send [default: 150].")
@click.option("--seed", type=click.IntRange(min=0), help="Same seed, same requests.")
@click.option(
    "--max-requests", type=click.IntRange(min=1), default=None, help="Request budget of the whole run [default: 1000]."
)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests per second at most.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=None,
    help="Requests in flight at once, across the schema phase and the scenarios; also the cancels raced "
    f"by BEH-RACE [default: {DEFAULT_CONCURRENCY}].",
)
@click.option(
    "--settle-timeout", type=click.FloatRange(min=0, max=3600), default=None,
    help="Seconds a 200 cancel may take to read CANCELLED [default: 30; 5 for the embedded server].",
)
@connection_options
@click.option("--dry-run", is_flag=True, help="Print what would be sent, send nothing.")
@click.option("--record", is_flag=True,
              help="Also write recording.har: every exchange, redacted (Authorization, tokens, passwords), "
              "as HTTP Archive 1.2.")
@click.option(
    "--report-dir", type=click.Path(file_okay=False), help="Where reports go [default: reports/<timestamp>/]."
)
@click.option(
    "--defect",
    "defects",
    multiple=True,
    metavar="NAME",
    help="Switch on a defect of the embedded reference server (demos, self-tests).",
)
@click.option(
    "--spec",
    type=click.Path(dir_okay=False),
    help="OpenAPI 2.0/3.x document (e.g. VMware's) whose Cancel Task is the contract [default: the shipped one].",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the verdict line.")
def run(**kwargs: Any) -> None:
    """Run the conformance suite against a target (default: the embedded reference server)."""
    kwargs.pop("config")
    targets = kwargs.pop("targets")
    shard = kwargs.pop("shard")
    if targets:
        from conformance.cli.fleet import fleet_command

        sys.exit(fleet_command(targets, kwargs, click.get_current_context(), shard=shard))
    if shard:
        raise click.UsageError("--shard needs --targets FILE")
    sys.exit(run_command(**kwargs, own_process=OWN_PROCESS in (click.get_current_context().obj or ())))



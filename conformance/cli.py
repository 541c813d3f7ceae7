"""Command line: `sddc-conformance run | serve | requirements`."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from conformance import __version__

EXIT_CODES = """\b
Exit codes:
  0  conformant
  1  not conformant (a MUST failed; a SHOULD failed with --strict; --certify unmet)
  2  usage or configuration error
  3  target unreachable, stopped answering, or authentication failed (no verdict)
  4  internal error of the suite (a bug; please report it)
"""

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_NOT_CONFORMANT, EXIT_USAGE, EXIT_TARGET, EXIT_INTERNAL = 0, 1, 2, 3, 4


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"sddc-conformance: error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="sddc-conformance")
def cli() -> None:
    """Conformance suite for SDDC Manager's Cancel Task operation, DELETE /v1/tasks/{id}."""


def _read_password(password_file: str | None) -> str | None:
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            fail(f"cannot read --password-file {password_file}: {exc.strerror}", EXIT_USAGE)
    return os.environ.get("SDDC_PASSWORD") or None


def connection_options(command: F) -> F:
    """--timeout, --ca-bundle and --insecure: how run and replay reach a target."""
    for option in reversed(
        (
            click.option(
                "--timeout",
                type=click.FloatRange(min=0, min_open=True),
                default=10.0,
                show_default=True,
                help="Seconds per request.",
            ),
            click.option(
                "--ca-bundle",
                type=click.Path(exists=True, dir_okay=False),
                help="CA bundle to verify the target's TLS certificate.",
            ),
            click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (warns)."),
        )
    ):
        command = option(command)
    return command


def default_report_dir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path("reports") / stamp
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{stamp}-{n}")
    return candidate


def _apply_config_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Eager, so the file becomes the defaults of every option parsed after it: click then gives
    # command line > environment > file > built-in default by itself.
    from conformance.config_file import ConfigError, load_for_run

    try:
        loaded = load_for_run(value)
    except ConfigError as exc:
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
@click.option("--max-examples", type=click.IntRange(min=1), default=None, help="Generated ids to send [default: 150].")
@click.option("--seed", type=click.IntRange(min=0), help="Same seed, same requests.")
@click.option(
    "--max-requests", type=click.IntRange(min=1), default=None, help="Request budget of the whole run [default: 1000]."
)
@click.option("--rate-limit", type=click.FloatRange(min=0, min_open=True), help="Requests per second at most.")
@connection_options
@click.option("--dry-run", is_flag=True, help="Print what would be sent, send nothing.")
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
@click.option("--quiet", "-q", is_flag=True, help="Print only the verdict line.")
def run(**kwargs: Any) -> None:
    """Run the conformance suite against a target (default: the embedded reference server)."""
    kwargs.pop("config")
    targets = kwargs.pop("targets")
    if targets:
        from conformance.fleet import fleet_command

        sys.exit(fleet_command(targets, kwargs, click.get_current_context()))
    from conformance.run_command import run_command

    sys.exit(run_command(**kwargs, password=_read_password(kwargs.pop("password_file"))))


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing sddc-conformance.toml.")
def init(force: bool) -> None:
    """Write a commented starter sddc-conformance.toml in the current directory."""
    from conformance.config_file import FILE_NAME, ConfigError, write_starter

    try:
        written = write_starter(Path(FILE_NAME), force=force)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {FILE_NAME}: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(f"wrote {written}; uncomment what you need, then run `sddc-conformance run`")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    help="Write base_url, credentials and task ids here (JSON, mode 0600).",
)
@click.option("--request-log", type=click.Path(dir_okay=False), help="Append every request as a JSON line.")
@click.option(
    "--defect", "defects", multiple=True, metavar="NAME", help="Switch on a defect (see `sddc-conformance defects`)."
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False))
def serve(
    host: str,
    port: int,
    state_file: str | None,
    request_log: str | None,
    defects: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
) -> None:
    """Run the reference SDDC Manager tasks service until interrupted."""
    from conformance.reference import ReferenceConfig, serve_forever

    if bool(tls_cert) != bool(tls_key):
        fail("--tls-cert and --tls-key go together", EXIT_USAGE)
    password = os.environ.get("SDDC_PASSWORD")
    try:
        config = ReferenceConfig(defects=frozenset(defects))
        if password:
            config = dataclasses.replace(config, password=password)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)

    def ready(url: str) -> None:
        click.echo(f"reference SDDC Manager tasks service listening on {url}")
        click.echo(
            f"user: {config.username}; password: {'from SDDC_PASSWORD' if password else 'generated'}"
            f"{f', written to {state_file}' if state_file else ''}"
        )
        click.echo("stop with Ctrl-C")

    try:
        serve_forever(
            config,
            host=host,
            port=port,
            state_file=state_file,
            request_log_file=request_log,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            on_ready=ready,
        )
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_USAGE)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True)
def requirements(fmt: str) -> None:
    """Print the catalogue of requirements."""
    from conformance.catalogue import render_markdown, render_table

    click.echo(render_markdown() if fmt == "markdown" else render_table(), nl=False)


@cli.command()
def defects() -> None:
    """List the reference server's switchable defects."""
    from conformance.reference.defects import DEFECTS

    for defect in DEFECTS.values():
        click.echo(f"{defect.name:<26} {defect.category:<13} expect {defect.expect:<4} {defect.description}")


VERIFY_EXIT_CODES = """\b
Exit codes:
  0  intact: every artifact matches manifest.json
  1  tampered: an artifact (or the manifest) changed, is missing or was added
  2  usage error: not a report directory or bundle, unreadable or unsafe archive
"""


@cli.command(epilog=VERIFY_EXIT_CODES)
@click.argument("path", type=click.Path(path_type=Path))
def verify(path: Path) -> None:
    """Check a report directory or bundle (.tar.gz) against its manifest.json."""
    from conformance.bundle import NotABundle
    from conformance.bundle import verify as verify_bundle

    try:
        result = verify_bundle(path)
    except NotABundle as exc:
        fail(str(exc), EXIT_USAGE)
    for line in result.lines():
        click.echo(line)
    if not result.intact:
        click.echo(f"TAMPERED: {path} does not match its manifest")
        sys.exit(EXIT_NOT_CONFORMANT)
    click.echo(f"INTACT: {result.artifacts} artifacts match manifest.json")
    sys.exit(EXIT_OK)


BUNDLE_EXIT_CODES = """\b
Exit codes:
  0  bundle written
  1  the report directory does not match its manifest (nothing written)
  2  usage error: not a report directory, or the output cannot be written
"""


@cli.command(epilog=BUNDLE_EXIT_CODES)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive to write [default: DIRECTORY.tar.gz beside the directory].",
)
def bundle(directory: Path, output: Path | None) -> None:
    """Pack a verified report directory into one .tar.gz to submit for certification."""
    from conformance.bundle import NotABundle, make_bundle

    target = output or directory.resolve().with_name(directory.resolve().name + ".tar.gz")
    try:
        written = make_bundle(directory, target)
    except NotABundle as exc:
        fail(str(exc), EXIT_USAGE)
    except ValueError as exc:
        fail(str(exc), EXIT_NOT_CONFORMANT)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}", EXIT_USAGE)
    click.echo(f"bundle: {written}")
    sys.exit(EXIT_OK)


REPLAY_EXIT_CODES = """\b
Exit codes:
  0  every replayable failure is fixed (scenario findings are listed, not replayed)
  1  at least one failure still fails
  2  usage error: no readable findings.json
  3  target unreachable or authentication failed
"""


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
    from conformance.replay import replay_command

    password_file = kwargs.pop("password_file")
    password = _read_password(password_file) if kwargs.get("username") else None
    sys.exit(replay_command(**kwargs, password=password))


def _hypothesis_storage() -> None:
    # Hypothesis keeps a cache in ./.hypothesis by default: a conformance run must not litter
    # the user's working directory (and its database is off anyway).
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sddc-conformance" / "hypothesis"
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache))


def main(argv: list[str] | None = None) -> None:
    _hypothesis_storage()
    try:
        cli.main(args=argv, prog_name="sddc-conformance", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - click version dependent
        click.echo(exc.format_message())
        sys.exit(EXIT_OK)
    except click.UsageError as exc:
        fail(exc.format_message().replace("\n", " "), EXIT_USAGE)
    except click.exceptions.Abort:
        fail("interrupted", 130)
    except click.ClickException as exc:
        fail(exc.format_message(), EXIT_USAGE)
    except Exception as exc:
        # A bug in the suite must still end in one line and a documented code; the traceback
        # is there for whoever reports it.
        if os.environ.get("SDDC_CONFORMANCE_DEBUG"):
            raise
        fail(
            f"internal error: {type(exc).__name__}: {exc} (set SDDC_CONFORMANCE_DEBUG=1 for the traceback)",
            EXIT_INTERNAL,
        )
    sys.exit(EXIT_OK)

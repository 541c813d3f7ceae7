"""`sddc-conformance serve`: the reference SDDC Manager tasks service."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conformance.cli.group import cli, fail
from conformance.outcome import ExitCode, exit_codes_epilog

if TYPE_CHECKING:
    from conformance.reference import ReferenceConfig

SERVE_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "stopped by Ctrl-C, SIGTERM or SIGHUP (a temporary state file is removed)",
        ExitCode.USAGE_ERROR: "usage error: a bad option, the port is in use, a TLS file that cannot be loaded",
    },
    only=(ExitCode.OK, ExitCode.USAGE_ERROR),
)


@cli.command(epilog=SERVE_EXIT_CODES)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback prints a warning (the password guards cancels).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False),
    help="Write base_url, credentials and task ids here (JSON, mode 0600) "
    "[default: state.json in a fresh private temporary directory, whose path is printed].",
)
@click.option("--request-log", type=click.Path(dir_okay=False), help="Append every request as a JSON line.")
@click.option(
    "--defect", "defects", multiple=True, metavar="NAME",
    help="Switch on a defect or a variation (see `sddc-conformance defects`).",
)
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="Every answer waits this many milliseconds.")
@click.option("--path-prefix", default="", metavar="/PREFIX",
              help="Mount every route under this path, e.g. /sddc-api (requests outside it answer 404).")
@click.option("--settle-seconds", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="async-cancel-* variations: how long a cancelled task keeps reading IN_PROGRESS.")
@click.option("--backpressure-rate", type=click.FloatRange(min=0, min_open=True), default=40.0, show_default=True,
              help="backpressure-429 variation: requests per second per client.")
@click.option("--backpressure-burst", type=click.IntRange(min=1), default=50, show_default=True,
              help="backpressure-429 variation: requests allowed at once.")
@click.option("--token-lifetime", "token_lifetime_requests", type=click.IntRange(min=0), default=None,
              metavar="N", help="An access token is accepted for N requests, then answers 401 [default: an hour].")
@click.option("--like", "like_path", type=click.Path(path_type=Path), metavar="PROFILE",
              help="Behave like a recorded build: its profile.json, or a report directory holding one. "
              "--defect and flags given beside it add to and override what it sets.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="PEM certificate: serve HTTPS (with --tls-key). Clients need it, or its CA, as --ca-bundle.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              help="PEM private key of --tls-cert.")
def serve(
    host: str,
    port: int,
    state_file: str | None,
    request_log: str | None,
    defects: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    like_path: Path | None,
    **knobs: Any,
) -> None:
    """Run the reference SDDC Manager tasks service until interrupted."""
    from conformance.reference import ReferenceConfig

    if like_path is not None:
        defects, knobs = _like(like_path, defects, knobs)
    if bool(tls_cert) != bool(tls_key):
        fail("--tls-cert and --tls-key go together", ExitCode.USAGE_ERROR)
    password = os.environ.get("SDDC_PASSWORD")
    try:
        config = ReferenceConfig(defects=frozenset(defects), **knobs)
        if password:
            config = dataclasses.replace(config, password=password)
    except ValueError as exc:
        fail(f"{_option_named(str(exc))}{exc}", ExitCode.USAGE_ERROR)
    with contextlib.ExitStack() as cleanup:
        if state_file is None:
            # The generated password must be retrievable, but never printed: a fresh 0700 directory
            # keeps the 0600 state file private, and only its path is shown. It holds the password,
            # so it goes when serve does, on every way out (Ctrl-C, SIGTERM, SIGHUP, an error).
            private = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sddc-serve-"))
            state_file = os.path.join(private, "state.json")
        _serve(config, host, port, state_file, request_log, tls_cert, tls_key, password)


def _serve(config: ReferenceConfig, host: str, port: int, state_file: str, request_log: str | None,
           tls_cert: str | None, tls_key: str | None, password: str | None) -> None:
    from conformance.reference import PortInUse, serve_forever

    def ready(url: str) -> None:
        click.echo(f"reference SDDC Manager tasks service listening on {url}")
        click.echo(
            f"user: {config.username}; password: {'from SDDC_PASSWORD' if password else 'generated'}"
            f", written to {state_file} (mode 0600)"
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
    except PortInUse as exc:
        fail(f"--port: {exc.strerror or exc}", ExitCode.USAGE_ERROR)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", ExitCode.USAGE_ERROR)


def _like(path: Path, defects: tuple[str, ...], knobs: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The recorded build's settings under what the command line gave explicitly."""
    from conformance.cli.compare import load_profile
    from conformance.reference.like import like
    from conformance.report.compare import ProfileError
    from conformance.text import clean_line

    try:
        likeness = like(load_profile(path))
    except ProfileError as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)
    except (TypeError, ValueError, AttributeError, KeyError):
        fail(f"{path}: a field of the wrong type (not written by sddc-conformance, or edited)", ExitCode.USAGE_ERROR)
    context = click.get_current_context()
    settings = dict(likeness.settings)
    recorded = sorted(settings.pop("defects"))
    for name in list(settings):
        if name in knobs and context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
            del settings[name]  # the command line wins
    shown = ", ".join([*recorded, *(f"{k}={v}" for k, v in sorted(settings.items()))]) or "the defaults"
    click.echo(f"like {clean_line(str(path))}: {clean_line(shown)}")
    for note in likeness.notes:
        click.echo(f"like: not reproduced: {clean_line(note)}")
    return tuple(dict.fromkeys([*recorded, *defects])), {**knobs, **settings}


def _option_named(message: str) -> str:
    """ReferenceConfig names its fields (path_prefix must ...): prefix the flag that set it."""
    if message.startswith("token_lifetime_requests"):
        return "--token-lifetime: "
    for name in ("latency_ms", "path_prefix", "settle_seconds", "backpressure_rate", "backpressure_burst"):
        if message.startswith(name):
            return f"--{name.replace('_', '-')}: "
    return ""

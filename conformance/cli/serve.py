"""`sddc-conformance serve`: the reference SDDC Manager tasks service."""

from __future__ import annotations

import dataclasses
import os

import click

from conformance.cli.group import cli, fail
from conformance.outcome import ExitCode


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
        fail("--tls-cert and --tls-key go together", ExitCode.USAGE_ERROR)
    password = os.environ.get("SDDC_PASSWORD")
    try:
        config = ReferenceConfig(defects=frozenset(defects))
        if password:
            config = dataclasses.replace(config, password=password)
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)

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
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", ExitCode.USAGE_ERROR)



"""`sddc-conformance init`: a starter config file."""

from __future__ import annotations

from pathlib import Path

import click

from conformance.cli.group import cli, fail
from conformance.outcome import ExitCode


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing sddc-conformance.toml.")
def init(force: bool) -> None:
    """Write a commented starter sddc-conformance.toml in the current directory."""
    from conformance.config.file import FILE_NAME, ConfigError, write_starter

    try:
        written = write_starter(Path(FILE_NAME), force=force)
    except ConfigError as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)
    except OSError as exc:
        fail(f"cannot write {FILE_NAME}: {exc.strerror or exc}", ExitCode.USAGE_ERROR)
    click.echo(f"wrote {written}; uncomment what you need, then run `sddc-conformance run`")



"""The `sddc-conformance` click group and what its commands share."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from conformance import __version__
from conformance.outcome import ExitCode, exit_codes_epilog

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = exit_codes_epilog()
# In the click context's `obj` when `main()` runs as the process's own entry point (the console
# script, `python -m conformance`), not called in-process with an argv: see run_command.
OWN_PROCESS = "own-process"


def fail(message: str, code: ExitCode) -> NoReturn:
    from conformance.text import clean_line

    click.echo(f"sddc-conformance: error: {clean_line(message)}", err=True)
    sys.exit(int(code))


# The module that defines each command, imported only when that command is asked for: `serve`
# then starts without importing the suite (Hypothesis, pytest, jsonschema: most of a second), and
# `--version` or `defects` answer at once.
COMMAND_MODULES = {
    "run": "run", "replay": "replay", "verify": "artifacts", "bundle": "artifacts", "serve": "serve",
    "requirements": "catalogue", "defects": "catalogue", "init": "init", "spec": "spec", "fleet": "fleet",
    "compare": "compare",
}


class LazyGroup(click.Group):
    """A click group whose commands register themselves when their module is first imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"conformance.cli.{module}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="sddc-conformance")
def cli() -> None:
    """Conformance suite for SDDC Manager's Cancel Task operation, DELETE /v1/tasks/{id}."""


def connection_options(command: F) -> F:
    """--timeout, --ca-bundle and --insecure: how run and replay reach a target."""
    for option in reversed(
        (
            click.option(
                "--timeout",
                type=click.FloatRange(min=0, min_open=True),
                default=10.0,
                show_default=True,
                help="Seconds a whole request may take: connect, send and the whole answer.",
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



"""Command line: `sddc-conformance run | serve | replay | verify | bundle | fleet | requirements | ...`.

Only this package turns results and errors into exit codes (`conformance.outcome.ExitCode`);
nothing else imports it.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import click

# The command modules (run, replay, serve ...) are imported by the group when their command is
# asked for (conformance.cli.group.COMMAND_MODULES), not here.
from conformance.cli.group import OWN_PROCESS, cli, fail
from conformance.outcome import ExitCode

__all__ = ["cli", "main"]


def _hypothesis_storage() -> None:
    # Hypothesis keeps a cache in ./.hypothesis by default: a conformance run must not litter
    # the user's working directory (and its database is off anyway).
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sddc-conformance" / "hypothesis"
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(cache))


def main(argv: list[str] | None = None) -> None:
    """The command line; `argv` None means the process's own (the console script, `python -m`)."""
    try:
        _main(argv)
    finally:
        if argv is None:
            # The process ends here. The interpreter's last garbage collections would walk the
            # whole heap a run loaded (about 0.4 s of CPU) to free memory the system takes back
            # anyway; frozen objects are skipped. Reports are written and closed by now. An
            # in-process caller passes `argv` and keeps its collector as it was.
            gc.freeze()


def _main(argv: list[str] | None) -> None:
    _hypothesis_storage()
    try:
        cli.main(args=argv, prog_name="sddc-conformance", standalone_mode=False,
                 obj=frozenset({OWN_PROCESS}) if argv is None else frozenset())
    except click.exceptions.NoArgsIsHelpError as exc:  # pragma: no cover - click version dependent
        click.echo(exc.format_message())
        sys.exit(ExitCode.OK)
    except click.UsageError as exc:
        fail(exc.format_message().replace("\n", " "), ExitCode.USAGE_ERROR)
    except click.exceptions.Abort:
        fail("interrupted", ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        fail(exc.format_message(), ExitCode.USAGE_ERROR)
    except Exception as exc:
        # A bug in the suite must still end in one line and a documented code; the traceback
        # is there for whoever reports it.
        if os.environ.get("SDDC_CONFORMANCE_DEBUG"):
            raise
        fail(
            f"internal error: {type(exc).__name__}: {exc} (set SDDC_CONFORMANCE_DEBUG=1 for the traceback)",
            ExitCode.INTERNAL_ERROR,
        )
    sys.exit(ExitCode.OK)

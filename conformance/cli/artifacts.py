"""`sddc-conformance verify` and `bundle`: the certification bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conformance.cli.group import cli, fail
from conformance.outcome import ExitCode, exit_codes_epilog

VERIFY_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "intact: every artifact matches manifest.json",
        ExitCode.NOT_CONFORMANT: "tampered: an artifact (or the manifest) changed, is missing or was added",
        ExitCode.USAGE_ERROR: "usage error: not a report directory or bundle, unreadable or unsafe archive",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR),
)


@cli.command(epilog=VERIFY_EXIT_CODES)
@click.argument("path", type=click.Path(path_type=Path))
def verify(path: Path) -> None:
    """Check a report directory or bundle (.tar.gz) against its manifest.json."""
    from conformance.report.bundle import NotABundle
    from conformance.report.bundle import verify as verify_bundle

    try:
        result = verify_bundle(path)
    except NotABundle as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)
    for line in result.lines():
        click.echo(line)
    if not result.intact:
        click.echo(f"TAMPERED: {path} does not match its manifest")
        sys.exit(ExitCode.NOT_CONFORMANT)
    click.echo(f"INTACT: {result.artifacts} artifacts match manifest.json")
    sys.exit(ExitCode.OK)


BUNDLE_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "bundle written",
        ExitCode.NOT_CONFORMANT: "the report directory does not match its manifest (nothing written)",
        ExitCode.USAGE_ERROR: "usage error: not a report directory, or the output cannot be written",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR),
)


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
    from conformance.report.bundle import NotABundle, make_bundle

    target = output or directory.resolve().with_name(directory.resolve().name + ".tar.gz")
    try:
        written = make_bundle(directory, target)
    except NotABundle as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)
    except ValueError as exc:
        fail(str(exc), ExitCode.NOT_CONFORMANT)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}", ExitCode.USAGE_ERROR)
    click.echo(f"bundle: {written}")
    sys.exit(ExitCode.OK)



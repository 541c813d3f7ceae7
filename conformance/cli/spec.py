"""`sddc-conformance spec diff`: how another OpenAPI document's Cancel Task differs from the contract.

For a new SDDC Manager release: diff VMware's document against the shipped fragment, read which
drifts the suite tolerates and which would change a verdict, then `run --spec` the document.
"""

from __future__ import annotations

import sys

import click

from conformance.cli.group import cli, fail
from conformance.outcome import ExitCode, exit_codes_epilog

# Any drift is exit 1, tolerated or not: a new document should be read by a person before it
# replaces the contract, and "tolerated" is the suite's judgement, shown in the table, not a pass.
SPEC_DIFF_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "no drift: the two Cancel Task contracts are the same",
        ExitCode.NOT_CONFORMANT: "drift: at least one difference, even when every one is tolerated "
        "(the table says which would change a verdict)",
        ExitCode.USAGE_ERROR: "a document is unreadable, not OpenAPI 2.0/3.x, or has no Cancel Task operation",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR, ExitCode.INTERNAL_ERROR),
)


@cli.group()
def spec() -> None:
    """Compare OpenAPI documents' Cancel Task (DELETE /v1/tasks/{id}) contracts."""


@spec.command(epilog=SPEC_DIFF_EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--against",
    type=click.Path(dir_okay=False),
    default=None,
    help="Compare FILE with this document instead of the shipped fragment.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def diff(file: str, against: str | None, fmt: str) -> None:
    """Print every drift from the shipped fragment (or --against) to FILE's Cancel Task.

    Each drift is marked "tolerated" (the suite's verdicts stay right) or "CHANGES VERDICT".
    """
    from conformance.contract import SpecError
    from conformance.spec import fragment_path
    from conformance.spec_diff import diff as drift_of
    from conformance.spec_diff import load_contract, render_json, render_markdown, render_text

    try:
        old = load_contract(against if against is not None else fragment_path())
        new = load_contract(file)
    except SpecError as exc:
        fail(str(exc), exc.exit_code)
    drifts = drift_of(old, new)
    render = {"text": render_text, "json": render_json, "markdown": render_markdown}[fmt]
    click.echo(render(drifts, old, new), nl=False)
    sys.exit(int(ExitCode.NOT_CONFORMANT if drifts else ExitCode.OK))

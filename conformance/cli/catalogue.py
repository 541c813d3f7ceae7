"""`sddc-conformance requirements` and `sddc-conformance defects`: what the suite checks and can simulate."""

from __future__ import annotations

import click

from conformance.cli.group import cli


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True)
def requirements(fmt: str) -> None:
    """Print the catalogue of requirements."""
    from conformance.report.catalogue import render_markdown, render_table
    from conformance.requirements import catalogue

    click.echo(render_markdown(catalogue()) if fmt == "markdown" else render_table(catalogue()), nl=False)


@cli.command()
def defects() -> None:
    """List the reference server's switchable defects."""
    from conformance.reference.defects import DEFECTS

    for defect in DEFECTS.values():
        click.echo(f"{defect.name:<26} {defect.category:<13} expect {defect.expect:<4} {defect.description}")



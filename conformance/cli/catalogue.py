"""`sddc-conformance requirements` and `sddc-conformance defects`: what the suite checks and can simulate."""

from __future__ import annotations

from collections.abc import Sequence

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
    """List the reference server's switchable defects (switch one on with `run --defect NAME`)."""
    import shutil

    from conformance.reference.defects import DEFECTS

    rows = [(d.name, d.category, d.expect, d.description) for d in DEFECTS.values()]
    click.echo(aligned(("DEFECT", "CATEGORY", "EXPECT", "WHAT THE SERVER DOES"), rows,
                       width=shutil.get_terminal_size().columns))


def aligned(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, width: int) -> str:
    """Columns as wide as their longest cell; the last one wrapped to `width` under itself."""
    import textwrap

    columns = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    indent = sum(columns) + 2 * len(columns)
    # Too narrow a terminal (or none) still gets a readable last column.
    last = max(width - indent, 40)
    lines = []
    for row in (header, *rows):
        start = "".join(f"{cell:<{w}}  " for cell, w in zip(row, columns, strict=False))
        wrapped = textwrap.wrap(row[-1], last) or [""]
        lines.append(start + wrapped[0])
        lines += [" " * indent + more for more in wrapped[1:]]
    return "\n".join(lines)

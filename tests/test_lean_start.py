"""The command line imports a command's module (and the suite behind it) only when asked for it."""

from __future__ import annotations

import subprocess
import sys

import click

from conformance.cli import cli
from conformance.cli.group import COMMAND_MODULES

HEAVY = ("hypothesis", "pytest", "jsonschema", "schemathesis", "conformance.requirements", "conformance.cli.run")

PROBE = f"""
import sys, click
import conformance.cli as c
heavy = {HEAVY!r}
print(sorted(m for m in heavy if m in sys.modules))
c.cli.get_command(click.Context(c.cli), "serve")
print(sorted(m for m in heavy if m in sys.modules))
c.cli.get_command(click.Context(c.cli), "run")
print("conformance.cli.run" in sys.modules, "hypothesis" in sys.modules)
"""


def test_serve_and_the_group_itself_import_none_of_the_suite() -> None:
    # A fresh interpreter: this test process has imported everything already.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]", "True True"]


def test_every_command_is_found_under_its_name() -> None:
    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name, name
    assert cli.get_command(context, "no-such-command") is None

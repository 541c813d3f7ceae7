"""The command line imports a command's module (and the suite behind it) only when asked for it."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import click
import pytest

from conformance.cli import cli, main
from conformance.cli.group import COMMAND_MODULES
from tests.conftest import free_port

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
    # Even the run command's module waits: the suite loads once the command runs, after the
    # embedded server has been started (conformance.engine.embedded).
    assert done.stdout.splitlines() == ["[]", "[]", "True False"]


def test_every_command_is_found_under_its_name() -> None:
    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name, name
    assert cli.get_command(context, "no-such-command") is None


EXIT_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))
from conformance.cli import main
main()
"""


def test_the_process_entry_point_freezes_the_heap_before_the_interpreter_exits() -> None:
    # The interpreter's final collections then skip what the run loaded (a lean end, not only start).
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE, "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "frozen at exit: True"


def test_an_in_process_call_leaves_the_collector_alone() -> None:
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert gc.get_freeze_count() == 0


FIRST_SCENARIO_PROBE = """
import atexit, sys
import conformance.engine.lanes as lanes
seen = []
start = lanes.ScenarioLane.start
def spy(self):
    seen.append(sorted(m for m in ("hypothesis", "rich", "schemathesis") if m in sys.modules))
    return start(self)
lanes.ScenarioLane.start = spy
atexit.register(lambda: print("loaded when the scenarios started:", seen[0]))
from conformance.cli import main
main()
"""


@pytest.mark.slow
def test_a_run_starts_its_scenarios_before_it_loads_hypothesis_or_rich(tmp_path: Path) -> None:
    # What the first requests do not need is loaded after them: Hypothesis (~0.2 s) by the state
    # machine's thread (the drawing is a child's), rich only for a terminal's live display.
    done = subprocess.run([sys.executable, "-c", FIRST_SCENARIO_PROBE, "run", "--quiet", "--max-examples", "5",
                           "--seed", "1", "--report-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "loaded when the scenarios started: []"


def test_the_collector_pauses_while_a_run_loads_and_is_left_as_it_was() -> None:
    from conformance.cli.run import collector_paused

    assert gc.isenabled()
    with collector_paused(freeze=False):
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == 0  # an in-process caller's collector: untouched
    gc.disable()
    try:
        with collector_paused(freeze=False):
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
    try:
        with collector_paused(freeze=True):
            loaded = [[] for _ in range(10)]
        # A process that is the run's alone: what the imports built is frozen, not walked again.
        assert gc.isenabled() and gc.get_freeze_count() >= len(loaded)
    finally:
        gc.unfreeze()


def test_an_in_process_run_leaves_the_collector_as_it_was(tmp_path: Path) -> None:
    # A run that ends before pytest starts (nothing listens on the port): nothing thaws the heap
    # after it, so nothing may have frozen it.
    try:
        main(["run", "--quiet", "--base-url", f"http://127.0.0.1:{free_port()}", "--token", "t", "--timeout", "2",
              "--report-dir", str(tmp_path / "r")])
    except SystemExit as exc:
        assert exc.code == 3
    assert gc.isenabled() and gc.get_freeze_count() == 0

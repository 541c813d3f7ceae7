"""benchmarks.mutation's choice of mutants (running them is for people, not CI)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks import mutation

MODULE = "conformance/outcome.py"


def test_lines_pick_only_the_mutation_sites_on_those_lines() -> None:
    everything = mutation.choose([MODULE], None, 0)
    lines = sorted({m.line for m in everything})
    assert len(lines) > 2
    picked = mutation.choose([MODULE], None, 0, mutation._lines(f"{lines[0]},{lines[-1]}-{lines[-1] + 1}"))
    assert {m.line for m in picked} == {lines[0], lines[-1]}
    assert picked == [m for m in everything if m.line in (lines[0], lines[-1])]


@pytest.mark.parametrize("value", ["9-3", "a-b", "5-", ",", "-4"])
def test_lines_that_are_no_range_are_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        mutation.main(["--list", "--modules", MODULE, "--lines", value])
    assert exc.value.code == 2
    assert "--lines" in capsys.readouterr().err


def test_the_tests_run_without_entry_point_plugins_as_the_tool_runs_them() -> None:
    # The tool disables plugin autoload (no pytest-xdist): tests/conftest.py must load without it.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_outcome.py"],
                          cwd=mutation.ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]

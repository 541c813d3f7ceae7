"""docs/walkthroughs.md cannot drift: runnable blocks run, every flag it names exists."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance.cli import cli
from tests.conftest import REPO_ROOT

pytest_plugins = ["pytester"]

DOC = REPO_ROOT / "docs" / "walkthroughs.md"
FIXTURES = REPO_ROOT / "docs" / "FIXTURES.md"
README = REPO_ROOT / "README.md"
PLUGIN = REPO_ROOT / "conformance" / "pytest_plugin.py"

_BLOCK = re.compile(r"(<!-- runnable -->\n)?```(\w*)\n(.*?)```", re.DOTALL)
# A block the page's runnable blocks need as a file: `<!-- file: NAME -->` before it.
_FILE = re.compile(r"<!-- file: ([\w.-]+) -->\n```\w*\n(.*?)```", re.DOTALL)


def blocks(text: str) -> list[tuple[bool, str, str]]:
    """(runnable, language, body) of every fenced block."""
    return [(bool(m.group(1)), m.group(2), m.group(3)) for m in _BLOCK.finditer(text)]


def runnable_blocks(doc: Path = DOC) -> list[str]:
    found = [body for runnable, lang, body in blocks(doc.read_text(encoding="utf-8")) if runnable]
    assert all(body for body in found)
    return found


def commands(text: str) -> list[tuple[str, list[str]]]:
    """Every `sddc-conformance <command> ...` in the text, with the long flags it uses."""
    joined = text.replace("\\\n", " ")
    found = []
    for match in re.finditer(r"sddc-conformance\s+([a-z][a-z-]*)([^\n`]*)", joined):
        # The command ends where the shell line moves on to something else.
        rest = re.split(r"\s(?:\||&&|;|#|>)|;", match.group(2))[0]
        found.append((match.group(1), re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest)))
    return found


def help_text(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_doc_has_runnable_blocks_for_two_walkthroughs() -> None:
    assert len(runnable_blocks()) >= 2


def test_every_command_and_flag_in_the_doc_exists() -> None:
    mentioned = commands(DOC.read_text(encoding="utf-8"))
    assert len(mentioned) > 10
    checked: set[tuple[str, str]] = set()
    top = help_text()
    for command, flags in mentioned:
        assert re.search(rf"^\s+{command}\s", top, flags=re.MULTILINE), f"no command {command!r}"
        page = help_text(command)
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", page), f"`{command}` has no {flag}"
            checked.add((command, flag))
    # The check is not vacuous: the doc's main flags were among those checked.
    assert {("run", "--ca-bundle"), ("run", "--dry-run"), ("run", "--certify"), ("run", "--targets"),
            ("run", "--rate-limit"), ("replay", "--ca-bundle")} <= checked


@pytest.mark.parametrize("doc", [DOC, FIXTURES], ids=lambda p: p.name)
def test_every_pytest_flag_in_the_doc_exists(doc: Path) -> None:
    source = PLUGIN.read_text(encoding="utf-8")
    for flag in set(re.findall(r"--sddc-[a-z-]+", doc.read_text(encoding="utf-8"))):
        assert f'"{flag}"' in source, flag


def test_the_flag_extraction_sees_continuations_and_stops_at_pipes() -> None:
    text = "sddc-conformance run --a \\\n    --b-c x | grep --d\n`sddc-conformance verify --e` --f"
    assert commands(text) == [("run", ["--a", "--b-c"]), ("verify", ["--e"])]


def test_readme_links_the_walkthroughs_and_the_ci_recipes() -> None:
    text = README.read_text(encoding="utf-8")
    assert "docs/walkthroughs.md" in text and "docs/ci/" in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_runnable_block(index: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_")}
    # `sddc-conformance` and `python3` as the reader's activated virtual environment gives them.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Twice in one directory: a reader who follows the walkthrough again must not trip over the
    # files (reports, state files, configs) the first pass left behind.
    for attempt in ("first", "second"):
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", runnable_blocks()[index]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, f"block {index} failed on the {attempt} pass:\n{done.stdout}\n{done.stderr}"


def test_the_fixture_pages_example_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/FIXTURES.md: its example test file, run as its runnable block says, in a fresh directory.

    In this process (pytester), not in a new one: a fresh interpreter spends seconds importing
    every installed pytest plugin, which the command line in the block does not test.
    """
    text = FIXTURES.read_text(encoding="utf-8")
    files = _FILE.findall(text)
    assert files
    for name, body in files:
        (pytester.path / name).write_text(body, encoding="utf-8")
    for name in [k for k in os.environ if k.startswith("SDDC_")]:
        monkeypatch.delenv(name)
    for block in runnable_blocks(FIXTURES):
        words = shlex.split(block)
        # The block is one pytest command line: its arguments are what this run gets.
        assert words[:3] == ["python3", "-m", "pytest"] and "\n" not in block.strip(), block
        result = pytester.runpytest(*words[3:])
        # Every example test ran and passed: none was skipped for want of a task.
        result.assert_outcomes(passed=len(re.findall(r"^def test_", files[0][1], flags=re.MULTILINE)))
        assert result.ret == 0

"""CONFORMANT / NOT CONFORMANT / NO VERDICT read the same in every output of a run."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult, free_port

WORDS = ("NOT CONFORMANT", "NO VERDICT", "CONFORMANT")


def word_in(text: str) -> str:
    """The verdict word a line starts with (NOT CONFORMANT is tested before CONFORMANT)."""
    for word in WORDS:
        if word in text:
            return word
    raise AssertionError(f"no verdict word in {text!r}")


def report_words(directory: Path) -> dict[str, str]:
    findings = json.loads((directory / "findings.json").read_text("utf-8"))
    summary = (directory / "summary.md").read_text("utf-8").splitlines()[0]
    page = (directory / "report.html").read_text("utf-8")
    banner = html.unescape(re.search(r'id="verdict">([^<]*)<', page).group(1))  # type: ignore[union-attr]
    junit = ET.parse(directory / "junit.xml").getroot()
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert findings["headline"] == banner == properties["headline"]
    # Markdown escapes what it would interpret and puts URLs in code spans; the words are untouched.
    assert summary.replace("\\", "").replace("`", "").endswith(findings["headline"])
    return {
        "findings.verdict": findings["verdict"],
        "findings.headline": word_in(findings["headline"]),
        "summary.md": word_in(summary),
        "report.html": word_in(banner),
        "junit.verdict": str(properties["verdict"]),
        "junit.headline": word_in(str(properties["headline"])),
    }


@pytest.mark.slow
@pytest.mark.parametrize(("args", "expected", "code"), [
    (["--seed", "3", "--max-examples", "5"], "CONFORMANT", 0),
    (["--seed", "3", "--max-examples", "5", "--defect", "plain-text-error"], "NOT CONFORMANT", 1),
])
def test_judged_runs_say_the_same_word_everywhere(args: list[str], expected: str, code: int, tmp_path: Path,
                                                  cli_main: Callable[..., CliResult]) -> None:
    # In this process: the words are the subject, not the process (tests/test_cli.py runs the command).
    loud = cli_main("run", *args, "--report-dir", str(tmp_path / "loud"))
    quiet = cli_main("run", *args, "--quiet", "--report-dir", str(tmp_path / "quiet"))
    assert loud.returncode == quiet.returncode == code, loud.stderr + quiet.stderr
    verdict_line = next(x for x in loud.stdout.splitlines() if x.startswith(WORDS))
    words = {"console": word_in(verdict_line), "quiet": word_in(quiet.stdout.strip()),
             **report_words(tmp_path / "loud")}
    assert set(words.values()) == {expected}, words
    headline = json.loads((tmp_path / "loud" / "findings.json").read_text("utf-8"))["headline"]
    # The headline (verdict + what did not run) starts the console and the --quiet line alike.
    assert verdict_line.startswith(headline + ":") and quiet.stdout.startswith(headline + ":")


def test_unreachable_target_says_no_verdict_everywhere(tmp_path: Path, cli_main: Callable[..., CliResult]) -> None:
    result = cli_main("run", "--base-url", f"http://127.0.0.1:{free_port()}", "--token", "t",
                     "--report-dir", str(tmp_path / "r"), "--timeout", "2")
    assert result.returncode == 3
    words = {"stderr": word_in(result.stderr), **report_words(tmp_path / "r")}
    assert set(words.values()) == {"NO VERDICT"}, words
    page = (tmp_path / "r" / "report.html").read_text("utf-8")
    # Amber, not the red of a failed target.
    assert 'class="banner none"' in page

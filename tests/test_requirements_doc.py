"""docs/REQUIREMENTS.md is the registry rendered: it may never drift from the code."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

from conformance import requirements
from conformance.report.catalogue import render_markdown

DOC = REPO_ROOT / "docs" / "REQUIREMENTS.md"
REGENERATE = "regenerate it: sddc-conformance requirements --format markdown > docs/REQUIREMENTS.md"


def test_requirements_doc_matches_the_live_registry() -> None:
    assert DOC.exists(), f"docs/REQUIREMENTS.md is missing; {REGENERATE}"
    expected = render_markdown(requirements.catalogue())
    assert DOC.read_text(encoding="utf-8") == expected, f"docs/REQUIREMENTS.md is stale; {REGENERATE}"


def test_requirements_doc_lists_every_registered_requirement() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [r.id for r in requirements.catalogue() if f"| `{r.id}` |" not in text]
    assert missing == [], f"not in docs/REQUIREMENTS.md: {missing}; {REGENERATE}"


def test_the_cli_prints_what_the_doc_holds() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", "from conformance.cli import main; main()", "requirements", "--format", "markdown"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == render_markdown(requirements.catalogue())

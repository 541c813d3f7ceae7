"""Provenance stays inside the repository: every citation points at docs/SOURCES.md, and resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "SOURCES.md"


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith((".py", ".md", ".yaml", ".yml", ".toml", ".json", ".sh"))]


def _anchors() -> set[str]:
    headings = re.findall(r"^#+ (.+)$", SOURCES.read_text(encoding="utf-8"), flags=re.M)
    # GitHub's anchor rule: lower case, punctuation dropped, spaces to hyphens.
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_no_citation_of_documents_outside_the_repository() -> None:
    outside = ("FACTS" + ".md", "SCHEMATHESIS" + "-NOTES", "shared" + "/seed", "shared" + "/vendor")
    offenders = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in _tracked_text_files()
        if path.is_file() and path.name != "test_sources.py"
        for word in outside
        if word in path.read_text(encoding="utf-8", errors="replace")
        # Tests that compare against the vendor document locate it beside the checkout and skip without it.
        and not (word == "shared" + "/vendor" and path.parts[-2] == "tests")
    ]
    assert not offenders


def test_every_sources_citation_resolves() -> None:
    anchors = _anchors()
    cited = {
        (path.relative_to(ROOT), anchor)
        for path in _tracked_text_files()
        if path.is_file()
        for anchor in re.findall(r"SOURCES\.md#([a-z0-9-]+)", path.read_text(encoding="utf-8", errors="replace"))
    }
    assert cited, "nothing cites docs/SOURCES.md"
    missing = sorted(f"{path}#{anchor}" for path, anchor in cited if anchor not in anchors)
    assert not missing

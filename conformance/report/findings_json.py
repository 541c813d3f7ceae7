"""findings.json: the whole run, machine-readable (schema: docs/findings.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.files import replace_atomically
from conformance.outcome import RunResult
from conformance.report.evidence import scrub_document

SCHEMA_ID = "https://sddc-conformance.invalid/findings.schema.json"


def write_findings(run: RunResult, directory: Path) -> Path:
    document = scrub_document({"$schema": SCHEMA_ID, **run.to_json()})
    # A hostile body can smuggle a lone surrogate into a message; backslashreplace turns it into
    # the equivalent JSON escape instead of failing the whole report.
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return replace_atomically(
        directory / "findings.json", lambda tmp: tmp.write_text(text, "utf-8", "backslashreplace")
    )

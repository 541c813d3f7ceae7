"""findings.json: the whole run, machine-readable (schema: docs/findings.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.findings import RunResult

SCHEMA_ID = "https://sddc-conformance.invalid/findings.schema.json"


def write_findings(run: RunResult, directory: Path) -> Path:
    path = directory / "findings.json"
    document = {"$schema": SCHEMA_ID, **run.to_json()}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path

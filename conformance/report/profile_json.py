"""profile.json: what the target did, by id class and task status (schema: docs/profile.schema.json).

`sddc-conformance compare` reads it; `serve --like` takes it on. It never holds an id, a token, a
password or a reference token: the engine keeps only counts, codes and wordings (ids as {id}).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.files import replace_atomically
from conformance.outcome import RunResult
from conformance.report.evidence import scrub_document
from conformance.text import public_url

PROFILE = "profile.json"
SCHEMA_ID = "https://sddc-conformance.invalid/profile.schema.json"


def profile_document(run: RunResult) -> dict[str, Any]:
    product = run.product or {}
    return scrub_document({
        "$schema": SCHEMA_ID,
        **(run.behaviour or {"profile_version": 1}),
        "run": {
            "suite_version": run.suite_version,
            "target": public_url(run.target_url),
            "embedded": run.embedded_target,
            "product_version": product.get("version") if isinstance(product, dict) else None,
            "defects": list(run.defects),
            "profile": run.profile,
            "seed": run.seed,
            "max_examples": run.max_examples,
            "verdict": str(run.verdict),
            "started_at": run.started_at,
        },
    })


def write_profile(run: RunResult, directory: Path) -> Path:
    text = json.dumps(profile_document(run), indent=2, ensure_ascii=False) + "\n"
    return replace_atomically(directory / PROFILE, lambda tmp: tmp.write_text(text, "utf-8", "backslashreplace"))

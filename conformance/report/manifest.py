"""manifest.json: the certification record of a run, written last, pinning every other artifact.

It says what was tested (suite, fragment, profile, seed, target, product), with what (Python and
key dependency versions), with which result (counts), and which files make up the evidence
(sha256 of each). `sddc-conformance verify` checks a directory or bundle against it.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from conformance.files import replace_atomically
from conformance.model import Outcome
from conformance.outcome import RunResult
from conformance.report.bundle import MANIFEST, artifact_digests, seal
from conformance.report.evidence import label_counts, scrub_document
from conformance.text import public_url

MANIFEST_VERSION = 1
KEY_DEPENDENCIES = ("schemathesis", "hypothesis", "jsonschema", "requests", "pytest", "junitparser", "rich")


def dependency_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in KEY_DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_manifest(run: RunResult, directory: Path) -> dict[str, Any]:
    # Only the artifacts this run wrote, by name; lstat, so a symlink is never measured through.
    artifacts = {
        name: {"sha256": digest, "bytes": (directory / name).lstat().st_size}
        for name, digest in artifact_digests(directory).items()
    }
    return {
        "manifest_version": MANIFEST_VERSION,
        "tool": "sddc-conformance",
        "suite_version": run.suite_version,
        "fragment": {"version": run.fragment_version, "sha256": run.fragment_sha256},
        # What the verdict was certified against: the shipped fragment or the `--spec` document.
        "contract": run.contract,
        "profile": run.profile,
        "seed": run.seed,
        "max_examples": run.max_examples,
        "strict": run.strict,
        "certify": run.certify,
        "target": {
            "url": public_url(run.target_url),
            "embedded": run.embedded_target,
            # Product details are whatever the target exposed: scrubbed like every other target text.
            "product": scrub_document(run.product) if run.product else None,
        },
        "defects": list(run.defects),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": round(run.duration_seconds, 3),
        "requests_sent": run.requests_sent,
        "verdict": run.verdict,
        "conformant": run.conformant,
        "counts": {str(o): run.count(o) for o in Outcome},
        "labels": label_counts(run),
        "python": {"version": platform.python_version(), "implementation": sys.implementation.name},
        "platform": platform.platform(terse=True),
        "dependencies": dependency_versions(),
        "artifacts": artifacts,
    }


def write_manifest(run: RunResult, directory: Path) -> Path:
    """Must run after every other writer: it hashes what they wrote."""
    # Hashed before the temporary file exists, so it never counts as an artifact.
    sealed = seal(build_manifest(run, directory))
    return replace_atomically(directory / MANIFEST, lambda tmp: tmp.write_bytes(sealed))

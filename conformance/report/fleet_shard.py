"""Shards of a fleet: which targets `run --targets FILE --shard K/N` runs, and the record it leaves.

The rule: the target at position i of the targets file (0-based, in file order) belongs to shard
(i mod N) + 1. Every shard gets ⌊T/N⌋ or ⌈T/N⌉ targets, any machine computes the same slices from
the same file, and a target appended at the end never moves an earlier one to another shard.

`shard.json`, written last in the shard's report directory, tells a merge what it cannot see from
the per-target reports alone: the whole list of target names and the sha256 of the targets file
(so a missing shard's targets are named, and a shard of another file is recognised as foreign),
K/N, each target's exit code, and the sha256 of each target's manifest.json (so a report swapped
for another run's, intact in itself, is caught). It is sealed like a manifest (`self_sha256`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.errors import OptionsError
from conformance.files import replace_atomically
from conformance.report.bundle import MANIFEST, is_regular, seal, sealed_problem, sha256_file
from conformance.report.fleet_index import TargetRun

SHARD_RECORD = "shard.json"
SHARD_RECORD_VERSION = 1
RULE = "target i (0-based, targets file order) runs in shard (i mod N) + 1"
MAX_SHARDS = 1000
_SPEC = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*$")


@dataclass(frozen=True)
class ShardSpec:
    index: int  # K, 1-based
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, position: int) -> bool:
        return shard_of(position, self.count) == self.index


def parse_shard(text: str) -> ShardSpec:
    """`K/N` with 1 <= K <= N <= 1000; anything else is a usage error."""
    match = _SPEC.match(text)
    if match:
        index, count = int(match.group(1)), int(match.group(2))
        if 1 <= index <= count <= MAX_SHARDS:
            return ShardSpec(index, count)
    raise OptionsError(f"--shard {text!r}: expected K/N with 1 <= K <= N <= {MAX_SHARDS} (e.g. 2/3)")


def shard_of(position: int, count: int) -> int:
    """The shard (1-based) of the target at `position` (0-based) among `count` shards."""
    return position % count + 1


def select(names: Sequence[str], spec: ShardSpec) -> list[str]:
    return [name for position, name in enumerate(names) if spec.owns(position)]


@dataclass(frozen=True)
class ShardRecord:
    spec: ShardSpec
    targets: tuple[str, ...]  # every target of the targets file, in its order
    targets_sha256: str
    # name -> (exit code, sha256 of its manifest.json or None when the target wrote no report)
    results: dict[str, tuple[int, str | None]]

    def expected(self) -> list[str]:
        return select(self.targets, self.spec)


def build_record(spec: ShardSpec, targets: Sequence[str], targets_sha256: str,
                 runs: Sequence[TargetRun]) -> dict[str, Any]:
    results = {}
    for run in runs:
        manifest = run.report_dir / MANIFEST
        results[run.name] = {
            "exit_code": run.exit_code,
            # lstat: a symlink is never a manifest.
            "manifest_sha256": sha256_file(manifest) if is_regular(manifest) else None,
        }
    return {
        "shard_record_version": SHARD_RECORD_VERSION,
        "tool": "sddc-conformance",
        "shard": {"index": spec.index, "count": spec.count, "rule": RULE},
        "targets_file": {"sha256": targets_sha256, "targets": list(targets)},
        "results": results,
        # A sealed document needs an artifact list; the shard's artifacts are its targets' manifests.
        "artifacts": {f"{name}/{MANIFEST}": {"sha256": entry["manifest_sha256"]}
                      for name, entry in results.items() if entry["manifest_sha256"]},
    }


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    sealed = seal(record)
    return replace_atomically(directory / SHARD_RECORD, lambda tmp: tmp.write_bytes(sealed))


class BadRecord(ValueError):
    """A shard record that is altered or malformed: the shard's evidence is refused."""


_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def parse_record(raw: bytes, valid_name: re.Pattern[str]) -> ShardRecord:
    """A shard record checked field by field; BadRecord names the first thing wrong."""
    document, problem = sealed_problem(raw)
    if problem or document is None:
        raise BadRecord(problem or "not a shard record")
    try:
        shard, listed, results = document["shard"], document["targets_file"], document["results"]
        spec = ShardSpec(int(shard["index"]), int(shard["count"]))
        names = tuple(listed["targets"])
        digest = listed["sha256"]
        parsed = {name: (int(entry["exit_code"]), entry["manifest_sha256"]) for name, entry in results.items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BadRecord("malformed (a field is missing or of the wrong type)") from None
    if document.get("tool") != "sddc-conformance" or document.get("shard_record_version") != SHARD_RECORD_VERSION:
        raise BadRecord("not a shard record of this suite's version")
    if not (1 <= spec.index <= spec.count <= MAX_SHARDS) or not isinstance(digest, str) or not _DIGEST.match(digest):
        raise BadRecord("malformed shard or digest")
    if not names or not all(isinstance(n, str) and valid_name.match(n) for n in names) or len(set(names)) != len(names):
        raise BadRecord("malformed target list")
    if any(sha is not None and (not isinstance(sha, str) or not _DIGEST.match(sha)) for _, sha in parsed.values()):
        raise BadRecord("malformed manifest digest")
    if set(parsed) != set(select(names, spec)):
        raise BadRecord(f"its results are not shard {spec}'s targets under the rule")
    return ShardRecord(spec, names, digest, parsed)

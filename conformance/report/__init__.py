"""Reports of one run: every writer takes a RunResult and a directory and returns the file it wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conformance.outcome import RunResult
from conformance.report.findings_json import write_findings
from conformance.report.har import write_har
from conformance.report.html import write_html
from conformance.report.junit import write_junit
from conformance.report.manifest import write_manifest
from conformance.report.profile_json import write_profile
from conformance.report.summary_md import write_summary

Writer = Callable[[RunResult, Path], Path]

# write_manifest stays last: it pins the sha256 of every file the others wrote.
WRITERS: tuple[Writer, ...] = (write_junit, write_findings, write_html, write_summary, write_profile, write_har,
                               write_manifest)


def write_reports(result: RunResult, directory: Path) -> list[Path]:
    """Write every report; each file is complete on disk before the next one starts.

    recording.har only when the run recorded (`run --record`): about 0.8 MB a default run, with
    the target's response bodies, which the other reports keep only as excerpts of failures.
    """
    directory.mkdir(parents=True, exist_ok=True)
    return [writer(result, directory) for writer in WRITERS if writer is not write_har or result.recording]

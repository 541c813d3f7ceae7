"""Plain-text evidence of a finding, shared by the console, JUnit, HTML and Markdown reports."""

from __future__ import annotations

import re
from typing import Any

from conformance.model import Finding, Outcome
from conformance.outcome import RequirementResult, RunResult
from conformance.text import strip_controls

RESPONSE_EXCERPT = 600

# Labels every report shares; WARN is a failed SHOULD that does not fail the run (no --strict).
WARN = "WARN"
LABELS = ("PASS", "FAIL", WARN, "NOT RUN", "SKIPPED")

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s?#]*@")


def label(result: RequirementResult, run: RunResult) -> str:
    if result.is_warning and not run.strict:
        return WARN
    return str(result.outcome)


def label_counts(run: RunResult) -> dict[str, int]:
    counts = dict.fromkeys(LABELS, 0)
    for result in run.results:
        counts[label(result, run)] += 1
    return counts


def scrub_userinfo(text: str) -> str:
    """Strip user:password@ from every URL inside free text (curl lines, messages)."""
    return _USERINFO.sub(r"\1", text)


def scrub_document(value: Any) -> Any:
    """scrub_userinfo applied to every string of a JSON-like document."""
    if isinstance(value, str):
        return scrub_userinfo(value)
    if isinstance(value, dict):
        return {k: scrub_document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_document(v) for v in value]
    return value


def reported_failures(result: RequirementResult) -> list[Finding]:
    """Findings worth showing as failures: informative notes of MAY requirements are not."""
    if result.outcome is not Outcome.FAIL:
        return []
    return [f for f in result.findings if str(f.level) == "fail"]


def finding_text(finding: Finding, *, excerpt: int = RESPONSE_EXCERPT) -> str:
    lines = [finding.summary]
    for violation in finding.violations:
        lines.append(f"  - {violation}")
    exchange = finding.exchange
    if exchange is not None:
        if exchange.purpose:
            lines.append(f"request ({exchange.purpose}):")
        lines.append(f"  {exchange.request.as_curl()}")
        if exchange.response is not None:
            response = exchange.response
            ctype = response.content_type or "no Content-Type"
            lines.append(f"response: {response.status} {response.reason} ({ctype})")
            if response.body:
                lines.append("  " + response.excerpt(excerpt).replace("\n", "\n  "))
        elif exchange.error:
            lines.append(f"no response: {exchange.error}")
    # Target text (reason, body, echoed URL) goes to junit.xml and the console: no terminal controls.
    return scrub_userinfo(strip_controls("\n".join(lines)))

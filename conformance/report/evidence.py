"""Plain-text evidence of a finding, shared by the console, JUnit and Markdown reports."""

from __future__ import annotations

from conformance.model import Finding

RESPONSE_EXCERPT = 600


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
            lines.append(f"response: {response.status} {response.reason} ({response.content_type or 'no Content-Type'})")
            if response.body:
                lines.append("  " + response.excerpt(excerpt).replace("\n", "\n  "))
        elif exchange.error:
            lines.append(f"no response: {exchange.error}")
    return "\n".join(lines)

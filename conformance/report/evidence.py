"""Plain-text evidence of a finding, shared by the console, JUnit, HTML and Markdown reports."""

from __future__ import annotations

import re
import shlex
from typing import Any

from conformance.model import Exchange, Finding, Outcome
from conformance.outcome import RequirementResult, RunResult, token_recipe
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


# Where the reproductions of an embedded run point: the embedded server is gone once the run ends,
# `sddc-conformance serve --port SERVE_PORT` brings the same reference server (and defects) back.
SERVE_PORT = 8484
# Concurrent requests of the race reproduction (the suite sends a handful at once).
RACE_PARALLEL = 8
def product_line(run: RunResult) -> str:
    """What the target says it is, as a reader says it: "SDDC Manager 5.2.0 at sddc.example"."""
    product = run.product
    if not product:
        return "not exposed"
    known = ("name", "version", "fqdn")
    words = [str(product[key]) for key in ("name", "version") if product.get(key)]
    if product.get("fqdn"):
        words += ["at", str(product["fqdn"])]
    # Anything else a findings.json carries (an older or newer suite) is kept, not dropped.
    words += [f"{key} {value}" for key, value in product.items() if key not in known]
    return " ".join(words) or "not exposed"


def verdict_line(run: RunResult) -> str:
    """The one line every output starts its verdict with: the headline (verdict + what did not run)."""
    return run.headline


def _serve_base() -> str:
    return f"http://127.0.0.1:{SERVE_PORT}"


def serve_setup(run: RunResult) -> list[str]:
    """How to bring an embedded run's target back for the curl reproductions."""
    defects = "".join(f" --defect {shlex.quote(d)}" for d in run.defects)
    return [
        f"# the embedded server has stopped; start the same one: sddc-conformance serve --port {SERVE_PORT}{defects}"
        " (with SDDC_PASSWORD set)",
        "# then get a token: " + token_recipe(_serve_base(), "admin@local"),
    ]


def reproduce_lines(exchange: Exchange, run: RunResult | None, requirement_id: str = "") -> list[str]:
    """Runnable shell lines that send the exchange's request again (secrets as ${SDDC_TOKEN})."""
    curl = exchange.request.as_curl()
    lines: list[str] = []
    if run is not None and run.embedded_target:
        base = run.target_url.rstrip("/")
        curl = curl.replace(base, _serve_base())
        lines += serve_setup(run)
    if requirement_id == "BEH-RACE":
        # One request shows nothing about a race: send the same cancel concurrently.
        parallel = curl.replace("curl ", "curl -s -o /dev/null -w '%{http_code}\\n' ", 1)
        lines.append(f"# {RACE_PARALLEL} concurrent cancels of one IN_PROGRESS task (use a fresh one): "
                     "exactly one may answer 200")
        lines.append(f"seq {RACE_PARALLEL} | xargs -P {RACE_PARALLEL} -I{{}} {parallel}")
    else:
        lines.append(curl)
    return [scrub_userinfo(line) for line in lines]


def rerun_lines(run: RunResult) -> list[str]:
    """The re-run command and what it needs first; empty for a result without one."""
    if not run.rerun:
        return []
    return [f"# {note}" for note in run.rerun_notes] + [run.rerun]


def finding_text(finding: Finding, *, excerpt: int = RESPONSE_EXCERPT, run: RunResult | None = None) -> str:
    lines = [finding.summary]
    for violation in finding.violations:
        lines.append(f"  - {violation}")
    exchange = finding.exchange
    if exchange is not None:
        if exchange.purpose:
            lines.append(f"request ({exchange.purpose}):")
        lines += [f"  {line}" for line in reproduce_lines(exchange, run, finding.requirement_id)]
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

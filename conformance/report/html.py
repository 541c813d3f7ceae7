"""report.html: one self-contained page (inline CSS, no script, no network) for people.

Everything that came from the target -- bodies, headers, reasons, even its URL -- is hostile:
it goes through `_e` (html.escape) and nothing else is ever interpolated raw. A restrictive
Content-Security-Policy backs that up: even an escaping bug could not load or run anything.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from conformance.files import replace_atomically
from conformance.model import Exchange, Finding, Level
from conformance.outcome import RequirementResult, RunResult, Verdict
from conformance.report.evidence import (
    LABELS,
    label,
    label_counts,
    product_line,
    reported_failures,
    reproduce_lines,
    rerun_lines,
    scrub_userinfo,
)
from conformance.text import public_url, strip_controls

# Long enough to show the shape of a bad body, short enough that a 16 MiB one cannot bloat the page.
BODY_EXCERPT = 2048
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;
background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:0 20px 40px}
h1{font-size:22px;margin:20px 0 8px}h2{font-size:18px;margin:28px 0 10px}h3{font-size:15px;margin:16px 0 6px}
.banner{padding:18px 20px;font-size:24px;font-weight:700;color:#fff}
.banner.ok{background:#1e7b34}.banner.bad{background:#b3261e}.banner.none{background:#8a6d00}
.banner small{display:block;font-size:14px;font-weight:400;opacity:.9}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d9dde3;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;background:#fff;padding:10px 14px;
border:1px solid #d9dde3}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;overflow-wrap:anywhere}
.o{font-weight:700;white-space:nowrap}.o-PASS{color:#1e7b34}.o-FAIL{color:#b3261e}.o-WARN{color:#9a6700}
.o-NOT-RUN{color:#5a6270}.o-SKIPPED{color:#8a919c}
td.id,td.id code{white-space:nowrap;overflow-wrap:normal}
pre{background:#101418;color:#e8eaed;padding:8px 10px;white-space:pre-wrap;overflow-wrap:anywhere;
max-height:420px;overflow:auto;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.finding{background:#fff;border:1px solid #d9dde3;border-left:4px solid #b3261e;padding:8px 14px;
margin:10px 0}
.finding.warn{border-left-color:#9a6700}
.muted{color:#5a6270}
"""


def _e(value: object) -> str:
    # Escaping defuses markup, not terminal controls: a saved or `cat`-ed page must not carry ESC/bidi.
    return html.escape(strip_controls(str(value)), quote=True)


def _outcome_class(text: str) -> str:
    return "o o-" + text.replace(" ", "-")


def _meta(run: RunResult) -> str:
    target = public_url(run.target_url) + (" (embedded reference server)" if run.embedded_target else "")
    rows = [
        ("Target", target),
        ("Product", product_line(run)),
        ("Suite version", run.suite_version),
        ("Fragment version", run.fragment_version),
        ("Fragment sha256", run.fragment_sha256),
        ("Contract", f"{run.contract_title} {run.contract_version}".strip()
         + (f" ({run.contract_source})" if run.contract_source else "")),
        ("Contract sha256", run.contract_sha256),
        ("Profile", run.profile),
        ("Seed", str(run.seed)),
        ("Max examples", str(run.max_examples)),
        ("Mode", ", ".join(m for m, on in (("strict", run.strict), ("certify", run.certify)) if on)
         or "default"),
        ("Started / finished", f"{run.started_at} / {run.finished_at} ({run.duration_seconds:.1f} s)"),
        ("Requests sent", str(run.requests_sent)),
    ]
    if run.defects:
        rows.append(("Reference defects", ", ".join(run.defects)))
    cells = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return f'<dl class="meta" id="run">{cells}</dl>'


def _banner(run: RunResult) -> str:
    counts = label_counts(run)
    detail = ", ".join(f"{counts[name]} {name.lower()}" for name in LABELS if counts[name])
    # NO VERDICT is amber, not red: nothing was found wrong with the target.
    css = {Verdict.CONFORMANT: "ok", Verdict.NOT_CONFORMANT: "bad", Verdict.NO_VERDICT: "none"}[run.verdict]
    return f'<div class="banner {css}" id="verdict">{_e(run.headline)}<small>{_e(detail)}</small></div>'


def _requirement_row(result: RequirementResult, run: RunResult) -> str:
    r = result.requirement
    text = label(result, run)
    notes = sum(1 for f in result.findings if f.level is Level.INFO)
    reason = result.reason + (f"; {notes} note{'s' if notes != 1 else ''}" if notes else "")
    anchor = f'<a href="#f-{_e(r.id)}">{_e(r.id)}</a>' if reported_failures(result) else _e(r.id)
    return (
        f'<tr><td class="{_outcome_class(text)}">{_e(text)}</td><td class="id"><code>{anchor}</code></td>'
        f"<td>{_e(r.severity)}</td><td>{_e(r.profile)}</td><td>{_e(r.title)}</td><td>{_e(reason)}</td></tr>"
    )


def _requirements_table(run: RunResult) -> str:
    rows = "".join(_requirement_row(r, run) for r in run.results)
    return (
        '<table id="requirements"><thead><tr><th>Result</th><th>ID</th><th>Severity</th><th>Profile</th>'
        f"<th>Requirement</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _exchange(exchange: Exchange, run: RunResult | None = None, requirement_id: str = "") -> str:
    request = exchange.request
    head = "\n".join([f"{request.method} {scrub_userinfo(request.url)}",
                      *(f"{name}: {value}" for name, value in request.headers.items())])
    parts = [
        f"<h4>Request{f' ({_e(exchange.purpose)})' if exchange.purpose else ''}</h4>",
        f'<pre class="request">{_e(head)}</pre>',
        "<h4>Reproduce</h4>",
        f'<pre class="curl">{_e(chr(10).join(reproduce_lines(exchange, run, requirement_id)))}</pre>',
    ]
    response = exchange.response
    if response is not None:
        ctype = response.content_type or "no Content-Type"
        parts.append(f"<h4>Response: {_e(response.status)} {_e(response.reason)} ({_e(ctype)}, "
                     f"{_e(len(response.body))} bytes{', truncated' if response.truncated else ''})</h4>")
        excerpt = response.excerpt(BODY_EXCERPT) if response.body else "(empty body)"
        parts.append(f'<pre class="body">{_e(excerpt)}</pre>')
    elif exchange.error:
        parts.append(f"<h4>No response</h4><pre>{_e(exchange.error)}</pre>")
    return "".join(parts)


def _violations(finding: Finding) -> str:
    if len(finding.violations) == 1:
        # The heading already says it; only where in the body is new.
        path = finding.violations[0].path
        return f'<p class="muted">JSON path: <code>{_e(path if path is not None else "(whole response)")}</code></p>'
    rows = "".join(
        f"<tr><td><code>{_e(v.path if v.path is not None else '(whole response)')}</code></td>"
        f"<td>{_e(v.message)}</td></tr>"
        for v in finding.violations
    )
    return f"<table><thead><tr><th>JSON path</th><th>Violation</th></tr></thead><tbody>{rows}</tbody></table>"


def _finding(finding: Finding, warn: bool, run: RunResult | None = None) -> str:
    body = _exchange(finding.exchange, run, finding.requirement_id) if finding.exchange is not None else ""
    return (
        f'<div class="finding{" warn" if warn else ""}"><h3>{_e(finding.summary)}</h3>'
        f"{_violations(finding)}{body}</div>"
    )


def _failures(run: RunResult) -> Iterable[str]:
    for result in run.results:
        findings = reported_failures(result)
        if not findings:
            continue
        r = result.requirement
        text = label(result, run)
        yield (
            f'<section class="failure" id="f-{_e(r.id)}">'
            f'<h2><span class="{_outcome_class(text)}">{_e(text)}</span> '
            f"{_e(r.id)} ({_e(r.severity)}): {_e(r.title)}</h2>"
            f'<p class="muted">Seed sentence: {_e(r.seed)}<br>{_e(result.reason)}; '
            f"{_e(len(findings))} distinct example(s) shown</p>"
        )
        for finding in findings:
            yield _finding(finding, warn=text == "WARN", run=run)
        yield "</section>"


def _rerun(run: RunResult) -> str:
    lines = rerun_lines(run)
    if not lines:
        return ""
    return f'<h2>Re-run</h2><pre class="rerun" id="rerun">{_e(chr(10).join(lines))}</pre>'


def render_html(run: RunResult) -> str:
    failures = "".join(_failures(run)) or '<p id="no-failures">No failures.</p>'
    notes = "".join(f"<li>{_e(scrub_userinfo(n))}</li>" for n in run.notes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(run.verdict)} - sddc-conformance report</title><style>{_CSS}</style></head><body>"
        f"{_banner(run)}<main><h1>SDDC Manager Cancel Task conformance</h1>{_meta(run)}"
        f"{_rerun(run)}<h2>Requirements</h2>{_requirements_table(run)}"
        f"{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}"
        f'<h2>Failures</h2><div id="failures">{failures}</div>'
        "</main></body></html>\n"
    )


def write_html(run: RunResult, directory: Path) -> Path:
    text = render_html(run)
    return replace_atomically(directory / "report.html", lambda tmp: tmp.write_text(text, "utf-8", "replace"))

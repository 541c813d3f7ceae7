"""summary.md: a short Markdown summary for CI step summaries and merge-request comments.

It is posted where people are notified, so nothing in it may link, embed, mention or format:
text from the target only ever appears inside code spans (where Markdown interprets nothing),
and the suite's own text is escaped.
"""

from __future__ import annotations

import re
from pathlib import Path

from conformance.files import replace_atomically
from conformance.outcome import RequirementResult, RunResult, Verdict
from conformance.report.evidence import (
    LABELS,
    WARN,
    label,
    label_counts,
    product_line,
    reported_failures,
    rerun_lines,
)
from conformance.text import public_url, strip_controls

# One line per row; a reader follows up in report.html.
CELL_LIMIT = 160
_SHOWN = ("FAIL", WARN, "NOT RUN")
# What Markdown (CommonMark + GitHub's extensions) would turn plain text into: code, emphasis,
# strikethrough and math delimiters, links and images ([...]), HTML and autolinks (<...>), table
# cells (|), entity references (&name;) and an underscore not inside a word (snake_case stays
# as it is). Everything else (. : ( ) - ! # @ ...) reads as itself
# in the middle of a line, which is the only place this text goes (after "## ", inside a cell).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*~$\[\]<|]|&(?=#?\w+;)|(?<![^\W_])_|_(?![^\W_])")
# Words a renderer would link or notify on its own, escaped or not (GitHub finds mentions and
# references in the rendered text): URLs, www. hosts, e-mail addresses, @mentions, #123. They go
# into code spans, where nothing is interpreted, like any text from the target.
_LINKISH = re.compile(r"\S*(?:://|@|\bwww\.)\S*|#\d\S*")
# Sentence punctuation around such a word stays outside its code span.
_AROUND = re.compile(r"^([(\[\"']*)(.*?)([)\]\"'.,;:!?]*)$")


def _one_line(text: str) -> str:
    # Controls first: ESC, C1 and bidi overrides are not whitespace and survive split().
    text = " ".join(strip_controls(text).split())
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


def _literal(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def _span(text: str) -> str:
    """An inline code span: fenced by more backticks than it contains; `|` escaped for tables."""
    text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def escape(text: str) -> str:
    """Suite text as literal Markdown: no emphasis, links, HTML, mentions or table breaks, and no
    backslash where none is needed (`NO VERDICT (target: ...)` reads as it is)."""
    out: list[str] = []
    last = 0
    line = _one_line(text)
    for match in _LINKISH.finditer(line):
        around = _AROUND.match(match.group(0))
        assert around is not None  # every part of the pattern is optional
        before, word, after = around.groups()
        out.append(_literal(line[last:match.start()] + before))
        out.append(_span(word) if word else "")
        out.append(_literal(after))
        last = match.end()
    out.append(_literal(line[last:]))
    return "".join(out)


def code(text: str) -> str:
    """Untrusted text as an inline code span, where Markdown interprets nothing."""
    return _span(_one_line(text))


def _row(result: RequirementResult, run: RunResult) -> str:
    r = result.requirement
    failures = reported_failures(result)
    example = code(failures[0].summary) if failures else ""
    return (
        f"| {label(result, run)} | `{r.id}` | {r.severity} | {escape(r.title)} | "
        f"{escape(result.reason)} | {example} |"
    )


def render_summary(run: RunResult) -> str:
    counts = label_counts(run)
    icon = {Verdict.CONFORMANT: "✅", Verdict.NOT_CONFORMANT: "❌", Verdict.NO_VERDICT: "⚠️"}[run.verdict]
    lines = [
        f"## {icon} sddc-conformance: {escape(run.headline)}",
        "",
        " · ".join(f"**{counts[name]}** {name.lower()}" for name in LABELS),
        "",
        f"Target {code(public_url(run.target_url))}"
        f"{' (embedded reference server)' if run.embedded_target else ''}"
        f" · product {code(product_line(run))} · profile `{run.profile}` · seed `{run.seed}`"
        f" · suite `{run.suite_version}` · fragment `{run.fragment_version}`"
        f" · contract {code(f'{run.contract_title} {run.contract_version}'.strip())}"
        f" (sha256 `{run.contract_sha256[:12]}`)"
        f" · {run.requests_sent} requests in {run.duration_seconds:.1f} s",
    ]
    rows = [_row(r, run) for r in run.results if label(r, run) in _SHOWN]
    if rows:
        lines += [
            "",
            "| Result | ID | Severity | Requirement | Reason | First finding |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    rerun = rerun_lines(run)
    if rerun:
        # A fenced block interprets nothing and copies straight into a shell; its fence is longer
        # than any backtick run inside, so no id or URL can close it.
        text = "\n".join(rerun)
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
        lines += ["", "Re-run with the same seed and options:", "", f"{fence}sh", text, fence]
    lines += ["", "Evidence, requests and curl reproductions: `report.html` and `findings.json`."]
    return "\n".join(lines) + "\n"


def write_summary(run: RunResult, directory: Path) -> Path:
    text = render_summary(run)
    return replace_atomically(directory / "summary.md", lambda tmp: tmp.write_text(text, "utf-8", "replace"))

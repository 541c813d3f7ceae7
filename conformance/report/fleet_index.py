"""The `--targets` index: index.html and index.md comparing several targets requirement by requirement."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.files import replace_atomically
from conformance.model import Requirement
from conformance.outcome import ExitCode

# What each child's exit code says, in the same words as the console and the reports.
STATUS_BY_EXIT = {
    ExitCode.OK: "CONFORMANT",
    ExitCode.NOT_CONFORMANT: "NOT CONFORMANT",
    ExitCode.USAGE_ERROR: "USAGE ERROR",
    ExitCode.NO_VERDICT: "NO VERDICT",
    ExitCode.INTERNAL_ERROR: "INTERNAL ERROR",
    ExitCode.INTERRUPTED: "NO VERDICT (interrupted)",
}


@dataclass(frozen=True)
class TargetRun:
    name: str
    exit_code: int
    report_dir: Path
    output: str  # the child's own lines (verdict or error), secrets never among them

    @property
    def status(self) -> str:
        try:
            return STATUS_BY_EXIT[ExitCode(self.exit_code)]
        except ValueError:
            return f"EXIT {self.exit_code}"

    def findings(self) -> dict[str, Any] | None:
        try:
            document = json.loads((self.report_dir / "findings.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return document if isinstance(document, dict) else None


# -- the index -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    run: TargetRun
    url: str
    verdict: str
    outcomes: dict[str, str]


def _columns(runs: list[TargetRun]) -> list[Column]:
    columns = []
    for run in runs:
        document = run.findings()
        outcomes: dict[str, str] = {}
        url = ""
        if document is not None:
            url = str((document.get("target") or {}).get("url") or "")
            for item in document.get("requirements") or []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    outcomes[item["id"]] = str(item.get("outcome"))
        # The exit code is the verdict that counts: a partial report of an unreachable target
        # still carries a "verdict" field that was never reached.
        columns.append(Column(run, url, run.status, outcomes))
    return columns


def _cell(column: Column, requirement_id: str) -> str:
    if not column.outcomes:
        return "NO REPORT"
    return column.outcomes.get(requirement_id, "—")


def render_markdown(runs: list[TargetRun], catalogue: Sequence[Requirement]) -> str:
    columns = _columns(runs)

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["# Conformance across targets", ""]
    lines.append("| requirement | severity | " + " | ".join(esc(c.run.name) for c in columns) + " |")
    lines.append("|---|---|" + "---|" * len(columns))
    lines.append("| **verdict** | | " + " | ".join(f"**{c.verdict}**" for c in columns) + " |")
    for requirement in catalogue:
        cells = " | ".join(_cell(c, requirement.id) for c in columns)
        lines.append(f"| {requirement.id} | {requirement.severity} | {cells} |")
    lines += ["", "## Targets", ""]
    for c in columns:
        url = f" `{esc(c.url)}`" if c.url else ""
        lines.append(f"- **{esc(c.run.name)}**{url}: {c.verdict} (exit {c.run.exit_code}); "
                     f"reports in [`{esc(c.run.name)}/`]({c.run.name}/summary.md)")
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}.PASS{background:#e6f4ea}.FAIL{background:#fce8e6}
.NOT-RUN,.NO-REPORT{background:#fef7e0}.SKIPPED{color:#777}
"""


def _verdict_class(exit_code: int) -> str:
    # Green for a verdict of conformance, red for one of non-conformance; a run that gave no
    # verdict (or could not run) is amber, as in report.html, never painted as the target's failure.
    if exit_code == ExitCode.OK:
        return "PASS"
    if exit_code == ExitCode.NOT_CONFORMANT:
        return "FAIL"
    return "NOT-RUN"


def render_html(runs: list[TargetRun], catalogue: Sequence[Requirement]) -> str:
    columns = _columns(runs)
    e = html.escape

    def css_class(text: str) -> str:
        return e(text.replace(" ", "-"))

    head = "".join(
        f'<th><a href="{e(c.run.name)}/report.html">{e(c.run.name)}</a><br><small>{e(c.url)}</small></th>'
        for c in columns
    )
    verdicts = "".join(
        f'<td class="{_verdict_class(c.run.exit_code)}"><strong>{e(c.verdict)}</strong></td>'
        for c in columns
    )
    rows = []
    for requirement in catalogue:
        cells = "".join(
            f'<td class="{css_class(_cell(c, requirement.id))}">{e(_cell(c, requirement.id))}</td>' for c in columns
        )
        rows.append(f"<tr><td title=\"{e(requirement.title)}\">{e(requirement.id)}</td>"
                    f"<td>{e(str(requirement.severity))}</td>{cells}</tr>")
    # Self-contained: inline style, no script, no external resource.
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Conformance across targets</title><style>{_CSS}</style></head><body>"
        "<h1>Conformance across targets</h1>"
        f"<table><thead><tr><th>requirement</th><th>severity</th>{head}</tr></thead><tbody>"
        f"<tr><td><strong>verdict</strong></td><td></td>{verdicts}</tr>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )


def write_index(runs: list[TargetRun], report_root: Path, catalogue: Sequence[Requirement]) -> tuple[Path, Path]:
    html_path, md_path = report_root / "index.html", report_root / "index.md"
    replace_atomically(html_path, lambda tmp: tmp.write_text(render_html(runs, catalogue), encoding="utf-8"))
    replace_atomically(md_path, lambda tmp: tmp.write_text(render_markdown(runs, catalogue), encoding="utf-8"))
    return html_path, md_path



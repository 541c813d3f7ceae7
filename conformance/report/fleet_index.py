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
    # Why a merged fleet has no trusted report for this target ("missing: shard 2/3 never
    # arrived", "refused: ..."); empty for a target that ran and reported.
    note: str = ""

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
        where = (f"{esc(c.run.note)}" if c.run.note
                 else f"reports in [`{esc(c.run.name)}/`]({c.run.name}/summary.md)")
        lines.append(f"- **{esc(c.run.name)}**{url}: {c.verdict} (exit {c.run.exit_code}); {where}")
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
        if not c.run.note else f'<th>{e(c.run.name)}<br><small>{e(c.run.note)}</small></th>'
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


FLEET_SUMMARY = "fleet.json"
FLEET_SUMMARY_VERSION = 1


def render_summary(runs: list[TargetRun], exit_code: int, problems: Sequence[str] = ()) -> dict[str, Any]:
    """fleet.json: the fleet's verdict for machines, one entry per target in the targets file's order.

    `failed` lists the requirements whose outcome is FAIL, read from the target's findings.json;
    `problems` are the merge's own lines (refused or missing evidence).
    """
    targets = []
    for column in _columns(runs):
        targets.append({
            "name": column.run.name,
            "status": column.verdict,
            "exit_code": column.run.exit_code,
            "url": column.url or None,
            "failed": sorted(k for k, v in column.outcomes.items() if v == "FAIL"),
            "report": f"{column.run.name}/" if column.outcomes else None,
            "note": column.run.note or None,
        })
    return {"fleet_version": FLEET_SUMMARY_VERSION, "tool": "sddc-conformance", "exit_code": exit_code,
            "targets": targets, "problems": list(problems)}


def write_index(runs: list[TargetRun], report_root: Path, catalogue: Sequence[Requirement], *,
                exit_code: int, problems: Sequence[str] = ()) -> tuple[Path, Path]:
    """index.html, index.md and fleet.json; the same files for a --targets run, a shard and a merge."""
    html_path, md_path = report_root / "index.html", report_root / "index.md"
    summary = json.dumps(render_summary(runs, exit_code, problems), indent=2, ensure_ascii=True) + "\n"
    replace_atomically(html_path, lambda tmp: tmp.write_text(render_html(runs, catalogue), encoding="utf-8"))
    replace_atomically(md_path, lambda tmp: tmp.write_text(render_markdown(runs, catalogue), encoding="utf-8"))
    replace_atomically(report_root / FLEET_SUMMARY, lambda tmp: tmp.write_text(summary, encoding="ascii"))
    return html_path, md_path



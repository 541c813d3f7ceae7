"""The human summary printed at the end of a run."""

from __future__ import annotations

from collections.abc import Callable

from conformance.model import Level, Outcome
from conformance.outcome import RunResult
from conformance.report.evidence import reproduce_lines, rerun_lines, verdict_line
from conformance.text import clean_line

Echo = Callable[[str], None]
# Failed findings shown per requirement; the rest are counted and left to the reports.
FAILURES_SHOWN = 3


def print_summary(run: RunResult, echo: Echo, *, report_dir: str | None = None) -> None:
    # Reasons, summaries, the target URL and curl lines carry target text: one cleaned line each.
    _print_summary(run, lambda text: echo(clean_line(text)), report_dir=report_dir)


def _print_summary(run: RunResult, echo: Echo, *, report_dir: str | None = None) -> None:
    echo(f"sddc-conformance {run.suite_version} - fragment {run.fragment_version} - profile {run.profile}")
    target = f"{run.target_url} (embedded reference server)" if run.embedded_target else run.target_url
    echo(f"target: {target}")
    for result in run.results:
        if result.outcome is Outcome.SKIPPED:
            continue
        r = result.requirement
        label = "WARN" if result.is_warning and not run.strict else str(result.outcome)
        line = f"{label:<8} {r.id:<20} {r.severity:<6} {r.title}"
        if result.outcome is Outcome.NOT_RUN:
            line += f"  [{result.reason}]"
        notes = sum(1 for f in result.findings if f.level is Level.INFO)
        if notes:
            line += f"  ({notes} note{'s' if notes != 1 else ''})"
        echo(line)
    skipped = run.count(Outcome.SKIPPED)
    if skipped:
        echo(f"({skipped} requirements of other profiles skipped)")
    for result in run.results:
        if result.outcome is not Outcome.FAIL:
            continue
        echo("")
        echo(f"{result.requirement.id} failed: {result.reason}")
        failed = [finding for finding in result.findings if finding.level is Level.FAIL]
        for finding in failed[:FAILURES_SHOWN]:
            echo(f"  {finding.summary}")
            for violation in finding.violations[1:6]:
                echo(f"    {violation}")
            if finding.exchange is not None:
                lines = reproduce_lines(finding.exchange, run, result.requirement.id)
                if len(lines) == 1:
                    echo(f"    reproduce: {lines[0]}")
                else:
                    echo("    reproduce:")
                    for line in lines:
                        echo(f"      {line}")
        more = more_failures(result.failures, len(failed))
        if more:
            echo(more)
    for note in run.notes:
        echo(f"note: {note}")
    rerun = rerun_lines(run)
    if rerun:
        echo("")
        echo("re-run (same seed and options):")
        for line in rerun:
            echo(f"  {line}")
    mode = (run.cancel_mode or {}).get("mode")
    if mode is not None:
        settle = (run.cancel_mode or {}).get("settle_seconds")
        echo(f"cancel mode: {mode}" + (f" (settled in up to {settle:.2f} s)" if settle is not None else ""))
    if run.coverage:
        echo(f"coverage: {run.coverage.get('distinct_ids')} distinct ids in {run.coverage.get('deletes')} DELETEs; "
             f"{len(run.coverage.get('classes') or {})} id classes")
    echo("")
    echo(closing_line(run))
    if report_dir:
        echo(f"reports: {report_dir}")


def closing_line(run: RunResult) -> str:
    """The verdict line a run ends with, on the console and in a pytest run's terminal summary."""
    return (
        f"{verdict_line(run)}: {run.count(Outcome.PASS)} passed, {run.count(Outcome.FAIL)} failed, "
        f"{run.count(Outcome.NOT_RUN)} not run; {run.requests_sent} requests in {run.duration_seconds:.1f} s; "
        f"seed {run.seed}"
    )


def more_failures(failures: int, kept: int) -> str | None:
    """The line that says where the failed evaluations the console does not show are, if any.

    The reports keep a few distinct examples per requirement (`kept`) and count every failure.
    """
    shown = min(kept, FAILURES_SHOWN)
    rest = max(failures, kept) - shown
    if rest <= 0:
        return None
    extra = kept - shown
    if extra == rest:
        return f"  ... and {rest} more in report.html / findings.json"
    where = f": {extra} more in report.html / findings.json, the rest" if extra else ", all"
    return (f"  ... and {rest} more failed evaluation{'s' if rest != 1 else ''}{where} counted there "
            "(repeats of those shown, or past the examples the reports keep)")

"""The human summary printed at the end of a run."""

from __future__ import annotations

from collections.abc import Callable

from conformance.model import Level, Outcome
from conformance.outcome import RunResult

Echo = Callable[[str], None]


def print_summary(run: RunResult, echo: Echo, *, report_dir: str | None = None) -> None:
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
        for finding in result.findings[:3]:
            if finding.level is not Level.FAIL:
                continue
            echo(f"  {finding.summary}")
            for violation in finding.violations[1:6]:
                echo(f"    {violation}")
            if finding.exchange is not None:
                echo(f"    reproduce: {finding.exchange.request.as_curl()}")
    for note in run.notes:
        echo(f"note: {note}")
    if run.coverage:
        echo(f"coverage: {run.coverage.get('distinct_ids')} distinct ids in {run.coverage.get('deletes')} DELETEs; "
             f"{len(run.coverage.get('classes') or {})} id classes")
    echo("")
    echo(
        f"{run.verdict}: {run.count(Outcome.PASS)} passed, {run.count(Outcome.FAIL)} failed, "
        f"{run.count(Outcome.NOT_RUN)} not run; {run.requests_sent} requests in {run.duration_seconds:.1f} s; "
        f"seed {run.seed}"
    )
    if report_dir:
        echo(f"reports: {report_dir}")

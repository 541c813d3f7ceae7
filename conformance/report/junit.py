"""junit.xml: one testcase per requirement, one testsuite per profile.

GitLab, GitHub (dorny/test-reporter, mikepenz/action-junit-report) and Jenkins show a testcase's
name, its failure message (one line) and the failure text (the evidence); WARN results stay green
but keep their evidence in system-out so a reviewer still sees them.
"""

from __future__ import annotations

import re
from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from conformance.files import replace_atomically
from conformance.model import Level, Outcome, Profile, Severity
from conformance.outcome import RequirementResult, RunResult
from conformance.report.evidence import finding_text, reported_failures
from conformance.text import public_url

# XML 1.0 cannot carry most control characters at all; a hostile body full of them would make the
# whole file unparseable, so they become U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _evidence(result: RequirementResult, run: RunResult | None = None) -> str:
    failures = reported_failures(result)
    text = "\n\n".join(finding_text(f, run=run) for f in failures)
    unshown = result.failures - len(failures)
    if failures and unshown > 0:
        text += f"\n\n({unshown} more failing evaluations repeat these findings)"
    return text


def _fails_the_run(result: RequirementResult, run: RunResult) -> bool:
    if result.outcome is Outcome.FAIL:
        return not result.is_warning or run.strict
    # --certify turns an unproven MUST into a failure of the run; CI must show it red too.
    return run.certify and result.outcome is Outcome.NOT_RUN and result.requirement.severity is Severity.MUST


def _case(result: RequirementResult, run: RunResult) -> TestCase:
    requirement = result.requirement
    case = TestCase(
        f"{requirement.id}: {requirement.title}", classname=f"sddc-conformance.{requirement.profile}"
    )
    evidence = _evidence(result, run)
    if _fails_the_run(result, run):
        message = f"{requirement.severity} {result.outcome}: {result.reason}"
        failures = reported_failures(result)
        if failures:
            # CI shows only the message at a glance: lead with what was wrong, not just a count.
            first = " | ".join(f.summary for f in failures[:2])
            message = f"{requirement.severity} {result.outcome}: {first} ({result.reason})"
        failure = Failure(xml_text(message), type_=str(requirement.severity))
        failure.text = xml_text(f"{requirement.seed}\n\n{evidence}".rstrip())
        case.result = [failure]
    elif result.outcome is Outcome.FAIL:
        case.system_out = xml_text(
            f"WARNING ({requirement.severity}, not failing without --strict): {result.reason}\n\n{evidence}"
        )
    elif result.outcome in (Outcome.NOT_RUN, Outcome.SKIPPED):
        case.result = [Skipped(xml_text(f"{result.outcome}: {result.reason}"))]
    else:
        notes = [f for f in result.findings if f.level is Level.INFO]
        if notes:
            case.system_out = xml_text("\n\n".join(finding_text(f) for f in notes))
    return case


def _suite(run: RunResult, profile: Profile) -> TestSuite:
    suite = TestSuite(f"sddc-conformance {profile}")
    for result in run.results:
        if result.requirement.profile is profile:
            suite.add_testcase(_case(result, run))
    properties = {
        "suite_version": run.suite_version,
        "fragment_version": run.fragment_version,
        "fragment_sha256": run.fragment_sha256,
        "target": public_url(run.target_url),
        "profile": run.profile,
        "seed": str(run.seed),
        "verdict": run.verdict,
        "headline": run.headline,
        "duration_seconds": f"{run.duration_seconds:.3f}",
        "requests_sent": str(run.requests_sent),
        **({"rerun": run.rerun} if run.rerun else {}),
    }
    for name, value in properties.items():
        suite.add_property(name, xml_text(value))
    suite.timestamp = run.started_at
    suite.update_statistics()
    return suite


def write_junit(run: RunResult, directory: Path) -> Path:
    xml = JUnitXml("sddc-conformance")
    for profile in Profile:
        xml.add_testsuite(_suite(run, profile))
    xml.time = round(run.duration_seconds, 3)
    xml.update_statistics()
    return replace_atomically(directory / "junit.xml", lambda tmp: xml.write(str(tmp), pretty=True))

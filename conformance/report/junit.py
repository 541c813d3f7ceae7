"""junit.xml: one testcase per requirement, one testsuite per profile."""

from __future__ import annotations

from pathlib import Path

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from conformance.findings import RequirementResult, RunResult
from conformance.model import Level, Outcome
from conformance.report.evidence import finding_text


def _case(result: RequirementResult, run: RunResult) -> TestCase:
    requirement = result.requirement
    case = TestCase(f"{requirement.id}: {requirement.title}", classname=f"sddc-conformance.{requirement.profile}")
    evidence = "\n\n".join(finding_text(f) for f in result.findings)
    if result.outcome is Outcome.FAIL and (not result.is_warning or run.strict):
        failure = Failure(f"{requirement.severity} {result.reason}", type_=str(requirement.severity))
        failure.text = f"{requirement.seed}\n\n{evidence}"
        case.result = [failure]
    elif result.outcome is Outcome.FAIL:
        case.system_out = f"WARNING ({requirement.severity}, not failing without --strict): {result.reason}\n\n{evidence}"
    elif result.outcome in (Outcome.NOT_RUN, Outcome.SKIPPED):
        case.result = [Skipped(f"{result.outcome}: {result.reason}")]
    else:
        notes = [f for f in result.findings if f.level is Level.INFO]
        if notes:
            case.system_out = "\n\n".join(finding_text(f) for f in notes)
    return case


def write_junit(run: RunResult, directory: Path) -> Path:
    xml = JUnitXml("sddc-conformance")
    for profile in ("schema", "behavior"):
        suite = TestSuite(f"sddc-conformance {profile}")
        for result in run.results:
            if str(result.requirement.profile) == profile:
                suite.add_testcase(_case(result, run))
        suite.add_property("target", run.target_url)
        suite.add_property("seed", str(run.seed))
        suite.add_property("verdict", run.verdict)
        xml.add_testsuite(suite)
    path = directory / "junit.xml"
    xml.write(str(path), pretty=True)
    return path

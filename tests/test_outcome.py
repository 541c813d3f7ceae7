"""RunResult and RequirementResult on hand-made results: the verdict rules, the headline, the JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conformance import requirements
from conformance.model import Finding, Level, Outcome, Requirement, Severity, Violation
from conformance.outcome import ExitCode, RequirementResult, RunResult, Verdict, exit_codes_epilog


def _requirement(severity: Severity) -> Requirement:
    return next(r for r in requirements.catalogue() if r.severity is severity)


MUST = _requirement(Severity.MUST)
SHOULD = _requirement(Severity.SHOULD)
MAY = _requirement(Severity.MAY)
OTHER_MUST = [r for r in requirements.catalogue() if r.severity is Severity.MUST][1]


def result(requirement: Requirement, outcome: Outcome, *, findings: tuple[Finding, ...] = ()) -> RequirementResult:
    return RequirementResult(requirement, outcome, "why", 3, 1 if outcome is Outcome.FAIL else 0, findings)


def run(*results: RequirementResult, **fields: Any) -> RunResult:
    values: dict[str, Any] = dict(
        suite_version="9.9", fragment_version="1.0", fragment_sha256="abc", target_url="http://127.0.0.1:1",
        embedded_target=True, profile="schema", seed=7, max_examples=5, started_at="s", finished_at="f",
        duration_seconds=1.23456, requests_sent=10, exchanges_checked=8, results=results,
    )
    values.update(fields)
    return RunResult(**values)


# -- exit codes ----------------------------------------------------------------------------------------

def test_exit_numbers_are_the_documented_ones() -> None:
    # Scripts and CI jobs branch on these numbers (README "Exit codes"); they never change.
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "NOT_CONFORMANT": 1, "USAGE_ERROR": 2, "NO_VERDICT": 3, "INTERNAL_ERROR": 4, "INTERRUPTED": 130,
    }


def test_each_verdict_has_its_exit_code() -> None:
    assert Verdict.CONFORMANT.exit_code is ExitCode.OK
    assert Verdict.NOT_CONFORMANT.exit_code is ExitCode.NOT_CONFORMANT
    assert Verdict.NO_VERDICT.exit_code is ExitCode.NO_VERDICT


def test_epilog_lists_every_code_with_its_words_unless_told_otherwise() -> None:
    full = exit_codes_epilog()
    assert full.startswith("\b\nExit codes:\n")
    for code in ExitCode:
        assert f"  {int(code)}  {code.doc}\n" in full
    # A command names only its own codes, and may word one its own way.
    own = exit_codes_epilog({ExitCode.NOT_CONFORMANT: "a failure still fails"},
                            only=(ExitCode.OK, ExitCode.NOT_CONFORMANT))
    assert own == "\b\nExit codes:\n  0  conformant\n  1  a failure still fails\n"


# -- RequirementResult -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("requirement", "outcome", "warning"),
    [(SHOULD, Outcome.FAIL, True), (SHOULD, Outcome.PASS, False), (SHOULD, Outcome.NOT_RUN, False),
     (MUST, Outcome.FAIL, False), (MAY, Outcome.FAIL, False)],
)
def test_only_a_failed_should_is_a_warning(requirement: Requirement, outcome: Outcome, warning: bool) -> None:
    assert result(requirement, outcome).is_warning is warning


# -- the verdict ---------------------------------------------------------------------------------------------

def test_a_passed_must_is_conformant() -> None:
    done = run(result(MUST, Outcome.PASS), result(SHOULD, Outcome.PASS))
    assert done.exercised and done.conformant
    assert done.verdict is Verdict.CONFORMANT and done.headline == "CONFORMANT"
    assert done.failed_must == [] and done.warnings == [] and done.unproven_must == [] and done.must_not_run == []


def test_a_failed_must_is_not_conformant_though_exercised() -> None:
    failed = result(MUST, Outcome.FAIL)
    done = run(failed, result(OTHER_MUST, Outcome.PASS))
    assert done.exercised and not done.conformant
    assert done.failed_must == [failed]
    assert done.verdict is Verdict.NOT_CONFORMANT and done.headline == "NOT CONFORMANT"


def test_a_failed_must_alone_is_exercised() -> None:
    # A failure is an evaluation: the run judged something, and what it judged failed.
    assert run(result(MUST, Outcome.FAIL)).exercised


@pytest.mark.parametrize("outcome", [Outcome.NOT_RUN, Outcome.SKIPPED])
def test_a_must_not_evaluated_is_not_exercised(outcome: Outcome) -> None:
    done = run(result(MUST, outcome), result(MAY, Outcome.PASS), result(SHOULD, Outcome.PASS))
    assert not done.exercised and not done.conformant


def test_failed_should_and_may_are_not_failed_musts() -> None:
    done = run(result(MUST, Outcome.PASS), result(SHOULD, Outcome.FAIL), result(MAY, Outcome.FAIL))
    assert done.failed_must == []
    assert [r.requirement for r in done.warnings] == [SHOULD]
    assert done.conformant
    assert not replace(done, strict=True).conformant
    # --strict without a warning changes nothing.
    assert replace(run(result(MUST, Outcome.PASS)), strict=True).conformant


def test_certify_refuses_a_must_not_passed_and_only_a_must() -> None:
    not_run = result(OTHER_MUST, Outcome.NOT_RUN)
    done = run(result(MUST, Outcome.PASS), not_run, result(SHOULD, Outcome.NOT_RUN), result(MAY, Outcome.SKIPPED))
    assert done.unproven_must == [not_run]
    assert done.conformant and not replace(done, certify=True).conformant
    proven = run(result(MUST, Outcome.PASS), result(SHOULD, Outcome.NOT_RUN), result(MAY, Outcome.SKIPPED))
    assert proven.unproven_must == [] and replace(proven, certify=True).conformant


def test_must_not_run_lists_only_musts_not_run() -> None:
    not_run = result(OTHER_MUST, Outcome.NOT_RUN)
    done = run(result(MUST, Outcome.PASS), not_run, result(SHOULD, Outcome.NOT_RUN), result(MAY, Outcome.NOT_RUN))
    assert done.must_not_run == [not_run]


def test_headline_counts_musts_not_run_in_words() -> None:
    musts = [r for r in requirements.catalogue() if r.severity is Severity.MUST][:3]
    one = run(result(musts[0], Outcome.PASS), result(musts[1], Outcome.NOT_RUN))
    assert one.headline == "CONFORMANT, 1 MUST requirement not run"
    two = run(result(musts[0], Outcome.FAIL), result(musts[1], Outcome.NOT_RUN), result(musts[2], Outcome.NOT_RUN))
    assert two.headline == "NOT CONFORMANT, 2 MUST requirements not run"


def test_a_stopped_run_has_no_verdict_whatever_it_saw() -> None:
    done = run(result(MUST, Outcome.PASS), result(OTHER_MUST, Outcome.NOT_RUN), stopped="the target stopped answering")
    assert done.conformant
    assert done.verdict is Verdict.NO_VERDICT
    assert done.headline == "NO VERDICT (the target stopped answering)"


def test_count_counts_each_outcome() -> None:
    done = run(result(MUST, Outcome.PASS), result(OTHER_MUST, Outcome.PASS), result(SHOULD, Outcome.FAIL))
    assert [done.count(o) for o in Outcome] == [2, 1, 0, 0]


# -- the contract and the JSON ---------------------------------------------------------------------------

def test_the_contract_defaults_to_the_fragment() -> None:
    assert run().contract == {"title": "", "version": "1.0", "sha256": "abc", "source": None}
    given = run(contract_title="VCF", contract_version="9.0", contract_sha256="def", contract_source="vcf.json")
    assert given.contract == {"title": "VCF", "version": "9.0", "sha256": "def", "source": "vcf.json"}


def test_requirement_result_json() -> None:
    finding = Finding(SHOULD.id, Level.FAIL, "bad label", (Violation("labelled text/plain"),))
    data = result(SHOULD, Outcome.FAIL, findings=(finding,)).to_json()
    assert data == {
        "id": SHOULD.id, "severity": "SHOULD", "profile": str(SHOULD.profile), "title": SHOULD.title,
        "seed": SHOULD.seed, "source": SHOULD.source, "outcome": "FAIL", "reason": "why", "evaluations": 3,
        "failures": 1, "findings": [finding.to_json()],
    }


def test_run_result_json() -> None:
    done = run(result(MUST, Outcome.PASS), result(SHOULD, Outcome.FAIL), result(OTHER_MUST, Outcome.NOT_RUN),
               strict=True, notes=("n",), defects=("d",), rerun="sddc-conformance run", rerun_notes=("r",),
               stateful_rules={"cancel": 2})
    data = done.to_json()
    assert data["duration_seconds"] == 1.235
    assert data["verdict"] == "NOT CONFORMANT"
    assert data["headline"] == "NOT CONFORMANT, 1 MUST requirement not run"
    assert data["counts"] == {"PASS": 1, "FAIL": 1, "NOT RUN": 1, "SKIPPED": 0}
    assert data["fragment"] == {"version": "1.0", "sha256": "abc"}
    assert data["contract"] == done.contract
    assert data["cancel_mode"] == {"mode": None, "settle_seconds": None}
    assert (data["notes"], data["defects"], data["rerun_notes"]) == (["n"], ["d"], ["r"])
    assert data["stateful_rules"] == {"cancel": 2}
    assert [r["id"] for r in data["requirements"]] == [MUST.id, SHOULD.id, OTHER_MUST.id]
    # Coverage appears only when the run measured it.
    assert "coverage" not in data
    measured = replace(done, coverage={"distinct_ids": 3}, cancel_mode={"mode": "synchronous", "settle_seconds": None})
    assert measured.to_json()["coverage"] == {"distinct_ids": 3}
    assert measured.to_json()["cancel_mode"]["mode"] == "synchronous"

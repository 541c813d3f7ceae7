"""The detection matrix as tests: every reference-server defect gets exactly the verdict its catalogue entry demands.

One test per catalogue entry (parametrised over the catalogue, so new entries are covered as soon
as they exist), so a regression names the defect; the judging lives in benchmarks/detection.py,
which prints the same matrix for people (`python -m benchmarks.detection`). The other tests prove
the judge bites: an extra failure, a missing one, or a failure without the defect's evidence makes
a row wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import pytest
from conftest import known_wrong

from benchmarks import detection
from benchmarks.detection import EVIDENCE, Expectation, coverage_problems, judge, render, run_defect
from conformance import requirements
from conformance.engine.target import TargetStoppedAnswering
from conformance.model import Exchange, Finding, Level, Outcome, Violation
from conformance.outcome import RequirementResult, RunResult
from conformance.reference.defects import DEFECTS, Defect
from conformance.requirements.registry import REGISTRY


def test_catalogue_covers_what_the_issue_demands() -> None:
    assert coverage_problems() == []


def test_evidence_names_only_catalogue_entries_that_expect_failures() -> None:
    assert set(EVIDENCE) <= set(DEFECTS)
    assert all(DEFECTS[n].expect in ("fail", "warn") and DEFECTS[n].requirements for n in EVIDENCE)
    assert all(EVIDENCE.values())


# The identity defects differ only in the lookup, and each family catches its own in
# tests/test_identity.py without a whole run: one whole run stands for them here (the one that also
# needs integer ids). `python -m benchmarks.detection` still runs every entry.
IDENTITY_SAMPLE = "numeric-ids"
WHOLE_RUNS = [n for n, d in DEFECTS.items() if d.category != "identity" or n == IDENTITY_SAMPLE]


def test_whole_runs_leave_out_only_identity_defects() -> None:
    assert {n for n in DEFECTS if n not in WHOLE_RUNS} == {
        n for n, d in DEFECTS.items() if d.category == "identity"} - {IDENTITY_SAMPLE}


# Both settle windows a fifth of the embedded defaults (5 s for the suite, 1 s for the server), the
# same ratio: the async-cancel-* entries still settle well inside the window, and the rows that wait
# windows out (cancel-never-settles: BEH-CANCEL, BEH-RACE, one BEH-STATEFUL example) and every
# run's end-of-run re-reads (which wait at most one window) take a fifth of the time. The window's
# last read comes after it closes, so a busy machine only makes a settled task likelier to show.
MATRIX_SETTLE_TIMEOUT = 1.0
MATRIX_REFERENCE_SETTLE = 0.2


def matrix_row(name: str, max_examples: int = 30) -> detection.Row:
    # 30 generated ids reach every id-dependent defect with the fixed seed.
    return run_defect(DEFECTS[name], max_examples=max_examples, settle_timeout=MATRIX_SETTLE_TIMEOUT,
                      reference_settle_seconds=MATRIX_REFERENCE_SETTLE)


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=known_wrong(n)) for n in WHOLE_RUNS])
def test_defect_verdict(name: str) -> None:
    row = matrix_row(name)
    assert row.correct, render([row])


# -- the judge, on synthetic results (fast) ------------------------------------------------------------

def _result(rid: str, outcome: Outcome, texts: Iterable[str] = ()) -> RequirementResult:
    findings = tuple(Finding(rid, Level.FAIL, t, (Violation(t, "/x"),)) for t in texts)
    return RequirementResult(requirements.get(rid),
                             outcome, "", 1, len(findings), findings)


def _run(failed: Mapping[str, Iterable[str]]) -> RunResult:
    """Every MUST/SHOULD requirement PASSes except the `failed` ones (id -> finding texts)."""
    results = tuple(
        _result(r.id, Outcome.FAIL, failed[r.id]) if r.id in failed else _result(r.id, Outcome.PASS)
        for r in requirements.catalogue()
    )
    return RunResult(
        suite_version="t", fragment_version="t", fragment_sha256="0", target_url="http://127.0.0.1:1",
        embedded_target=True, profile="full", seed=1, max_examples=1, started_at="", finished_at="",
        duration_seconds=0.0, requests_sent=1, exchanges_checked=1, results=results,
    )


FAIL_DEFECT = Defect("d-fail", "status", "x", "fail", ("SCH-STATUS",))
WARN_DEFECT = Defect("d-warn", "content-type", "x", "warn", ("SCH-ERROR-MEDIA",))
PASS_DEFECT = Defect("d-pass", "variation", "x", "pass")


def test_judge_accepts_exactly_the_listed_failures() -> None:
    assert judge(FAIL_DEFECT, _run({"SCH-STATUS": ["undocumented status 400"]}), None) == (True, "")
    assert judge(WARN_DEFECT, _run({"SCH-ERROR-MEDIA": ["text/plain"]}), None) == (True, "")
    assert judge(PASS_DEFECT, _run({}), None) == (True, "")


@pytest.mark.parametrize("defect", [FAIL_DEFECT, WARN_DEFECT, PASS_DEFECT], ids=lambda d: d.expect)
def test_judge_rejects_an_extra_failure(defect: Defect) -> None:
    failed = {rid: ["x"] for rid in defect.requirements} | {"BEH-RACE": ["two winners"]}
    ok, why = judge(defect, _run(failed), None)
    assert not ok
    assert "false positive: BEH-RACE" in why


def test_judge_rejects_an_extra_should_failure_on_a_pass_entry() -> None:
    ok, why = judge(PASS_DEFECT, _run({"SCH-ERROR-MEDIA": ["text/plain"]}), None)
    assert (ok, why) == (False, "false positive: SCH-ERROR-MEDIA")


def test_judge_rejects_a_missing_failure() -> None:
    defect = Defect("d", "status", "x", "fail", ("SCH-STATUS", "BEH-UNKNOWN-404"))
    ok, why = judge(defect, _run({"SCH-STATUS": ["x"]}), None)
    assert (ok, why) == (False, "not failed: BEH-UNKNOWN-404")


def test_judge_demands_the_evidence() -> None:
    want = Expectation("d-fail", "fail", frozenset({"SCH-STATUS"}), ("400",))
    assert judge(FAIL_DEFECT, _run({"SCH-STATUS": ["undocumented status 400"]}), None, want) == (True, "")
    ok, why = judge(FAIL_DEFECT, _run({"SCH-STATUS": ["undocumented status 204"]}), None, want)
    assert not ok and "SCH-STATUS fails without mentioning '400'" in why


def test_judge_warn_must_stay_conformant_and_fail_under_strict() -> None:
    # A warn entry whose listed requirement fails as a MUST would make the run not conformant.
    ok, why = judge(WARN_DEFECT, _run({"SCH-ERROR-MEDIA": ["x"], "SCH-STATUS": ["x"]}), None)
    assert not ok and "not conformant" in why


def test_judge_without_a_verdict() -> None:
    hostile = Defect("h", "hostile", "x", "fail")
    assert judge(hostile, None, TargetStoppedAnswering("gone"))[0]
    assert not judge(FAIL_DEFECT, None, TargetStoppedAnswering("gone"))[0]
    # A hostile entry listing nothing must stop the run: a completed run is wrong.
    assert not judge(hostile, _run({}), None)[0]


# -- it bites on real runs: a check sabotaged to fail everything makes false positives ---------------

def _sabotage(monkeypatch: pytest.MonkeyPatch, rid: str) -> None:
    def fails_everything(ctx: object, exchange: Exchange) -> list[Violation]:
        return [Violation("sabotaged")]

    monkeypatch.setitem(REGISTRY, rid, dataclasses.replace(REGISTRY[rid], func=fails_everything))


@pytest.mark.slow
def test_a_sabotaged_check_makes_the_row_wrong_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    # One real run, two sabotaged checks: one that fails everything (a false positive) and one
    # that passes everything (the defect missed). The judge's three kinds of entry (fail, warn,
    # pass) are proved on synthetic results above; this proves it on what a real run records.
    _sabotage(monkeypatch, "SRV-NO-5XX")
    monkeypatch.setitem(REGISTRY, "SCH-ERROR-BODY",
                        dataclasses.replace(REGISTRY["SCH-ERROR-BODY"], func=lambda ctx, exchange: []))
    row = matrix_row("error-wrong-type-top", max_examples=10)
    assert not row.correct
    assert "false positive: SRV-NO-5XX" in row.why
    assert "SRV-NO-5XX" in row.failed
    assert "not failed: SCH-ERROR-BODY" in row.why


def test_only_flag_runs_a_subset_and_prints_the_last_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []

    def fake_run(defect: Defect, **kwargs: object) -> detection.Row:
        ran.append(defect.name)
        return detection.Row(defect.name, defect.category, defect.expect, "CONFORMANT", (), 1, 0.0,
                             defect.name != "html-500", "" if defect.name != "html-500" else "judged conformant")

    monkeypatch.setattr(detection, "run_defect", fake_run)
    assert detection.main(["--only", "minimal-error,html-500"]) == 1
    assert ran == ["minimal-error", "html-500"]
    assert capsys.readouterr().out.splitlines()[-1] == "detection: 1/2 verdicts right"
    assert detection.main(["--only", "minimal-error"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "detection: 1/1 verdicts right"
    with pytest.raises(SystemExit) as exit_info:
        detection.main(["--only", "no-such-defect"])
    assert exit_info.value.code == 2

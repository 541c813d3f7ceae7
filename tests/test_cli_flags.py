"""--strict, --certify and "nothing exercised" through the real command, exit code and verdict together.

The command runs in this process (`conformance.cli.main`, this checkout's code), against the embedded
reference server; one usage error runs as `python -m conformance` in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, CliResult

from conformance import requirements
from conformance.model import Outcome, Severity
from conformance.outcome import ExitCode, RequirementResult, RunResult, Verdict

pytestmark = pytest.mark.slow


def run_cli(cli_main: Callable[..., CliResult], tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Exit code, findings.json and the console text of one `run` (in this process: the verdict and
    exit code are what is tested here, not the process; a usage error's one line in a child process
    is test_a_budget_spent_by_the_login_is_not_an_internal_error's)."""
    report_dir = tmp_path / "reports"
    result = cli_main("run", "--report-dir", str(report_dir), "--seed", "1", "--max-examples", "10", *args)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    file = report_dir / "findings.json"
    # A usage error writes no report (nothing was judged); every other end does.
    findings = json.loads(file.read_text(encoding="utf-8")) if result.returncode != 2 else {}
    return result.returncode, findings, output


def outcomes(findings: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in findings["requirements"]}


@pytest.mark.parametrize(("flags", "code", "verdict"), [
    ((), ExitCode.OK, "CONFORMANT"),
    (("--strict",), ExitCode.NOT_CONFORMANT, "NOT CONFORMANT"),
], ids=["lenient", "strict"])
def test_a_failed_should_fails_only_under_strict(cli_main: Callable[..., CliResult], tmp_path: Path,
                                                 flags: tuple[str, ...], code: ExitCode, verdict: str) -> None:
    returncode, findings, output = run_cli(cli_main, tmp_path, "--defect", "json-error-as-text-plain",
                                           "--profile", "schema", *flags)
    assert returncode == code, output
    assert findings["verdict"] == verdict
    failed = {rid for rid, outcome in outcomes(findings).items() if outcome == "FAIL"}
    # The same evidence both times: only the flag changes the verdict.
    assert failed == {"SCH-ERROR-MEDIA"}


@pytest.mark.parametrize(("flags", "code", "verdict"), [
    ((), ExitCode.OK, "CONFORMANT"),
    (("--certify",), ExitCode.NOT_CONFORMANT, "NOT CONFORMANT"),
], ids=["plain", "certify"])
def test_certify_refuses_unproven_musts(cli_main: Callable[..., CliResult], tmp_path: Path,
                                        flags: tuple[str, ...], code: ExitCode, verdict: str) -> None:
    returncode, findings, output = run_cli(cli_main, tmp_path, "--profile", "schema", *flags)
    assert returncode == code, output
    assert findings["verdict"] == verdict
    # Nothing failed: the schema profile leaves the behaviour MUSTs (and SCH-200-EMPTY) unproven,
    # and only --certify turns that into a failed run.
    assert "FAIL" not in outcomes(findings).values()
    assert outcomes(findings)["BEH-CANCEL"] == "SKIPPED"


def test_a_budget_below_the_minimum_is_refused_and_the_minimum_judges(cli_main: Callable[..., CliResult],
                                                                       tmp_path: Path) -> None:
    # Budgets around what logging in, the preflight and listing take: below what the plan needs to
    # judge every MUST it is the user's setting (exit 2, naming the number); at that number the
    # run judges what its MUSTs need (a run that judged nothing would be NOT CONFORMANT).
    outcomes = []
    named: set[int] = set()
    for budget in range(2, 9):
        returncode, findings, output = run_cli(cli_main, tmp_path / str(budget), "--profile", "schema",
                                               "--max-requests", str(budget))
        outcomes.append(returncode)
        if returncode == ExitCode.USAGE_ERROR:
            assert f"--max-requests {budget} is below the " in output and "allow at least" in output, output
            named.add(int(output.split("allow at least ")[1].split()[0]))
            continue
        assert returncode == ExitCode.OK, output
        assert findings["exchanges_checked"] > 0 and findings["requests_sent"] <= budget
        # The number the refusals named is the first budget that runs.
        assert named == {budget}
        break
    assert outcomes[0] == ExitCode.USAGE_ERROR and outcomes[-1] == ExitCode.OK, outcomes


def test_a_budget_spent_by_the_login_is_not_an_internal_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--report-dir", str(tmp_path / "r"), "--profile", "schema",
         "--max-requests", "1", "--quiet"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300,
    )
    assert result.returncode == ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- the same rules on RunResult directly (fast) ------------------------------------------------------

def _run(outcome_of: dict[str, Outcome], default: Outcome, **flags: bool) -> RunResult:
    results = tuple(
        RequirementResult(r, outcome_of.get(r.id, default), "", 0, 0, ()) for r in requirements.catalogue()
    )
    return RunResult(
        suite_version="t", fragment_version="t", fragment_sha256="0", target_url="http://127.0.0.1:1",
        embedded_target=True, profile="full", seed=1, max_examples=1, started_at="", finished_at="",
        duration_seconds=0.0, requests_sent=0, exchanges_checked=0, results=results, **flags,
    )


def test_nothing_exercised_is_not_conformant_and_exits_1() -> None:
    for outcome in (Outcome.NOT_RUN, Outcome.SKIPPED):
        run = _run({}, outcome)
        assert not run.exercised and not run.conformant
        assert run.verdict is Verdict.NOT_CONFORMANT and run.verdict.exit_code is ExitCode.NOT_CONFORMANT == 1
    # Only a MAY exercised proves nothing either.
    mays = {r.id: Outcome.PASS for r in requirements.catalogue() if r.severity is Severity.MAY}
    assert mays, "the catalogue has a MAY requirement to try this with"
    assert not _run(mays, Outcome.NOT_RUN).conformant
    # One exercised MUST is enough to judge.
    assert _run({"SRV-ANSWERS": Outcome.PASS}, Outcome.NOT_RUN).conformant


def test_strict_and_certify_on_run_result() -> None:
    should = next(r.id for r in requirements.catalogue() if r.severity is Severity.SHOULD)
    warned = {should: Outcome.FAIL, "SRV-ANSWERS": Outcome.PASS}
    assert _run(warned, Outcome.PASS).conformant
    assert not _run(warned, Outcome.PASS, strict=True).conformant
    partly = {"SRV-ANSWERS": Outcome.PASS}
    assert _run(partly, Outcome.NOT_RUN).conformant
    assert not _run(partly, Outcome.NOT_RUN, certify=True).conformant
    assert _run({}, Outcome.PASS, certify=True, strict=True).conformant

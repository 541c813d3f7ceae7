"""docs/ci/: the shared script really gates on a mock, and both CI recipes really call it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import REPO_ROOT

CI_DIR = REPO_ROOT / "docs" / "ci"
SCRIPT = CI_DIR / "run-against-mock.sh"
SCRIPT_CALL = "bash docs/ci/run-against-mock.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_script(workdir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDDC_", "GITHUB_"))}
    # The suite's console script lives beside this interpreter (a virtual environment's bin/).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env |= {"PYTHON": sys.executable, "MOCK_PORT": "0", "SDDC_RUN_ARGS": "--max-examples 10 --seed 1 --quiet"}
    env |= settings
    return subprocess.run(["bash", str(SCRIPT)], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.slow
def test_script_runs_the_suite_against_a_mock_and_passes(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    done = run_script(tmp_path, GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("CONFORMANT")
    reports = tmp_path / "reports" / "ci"
    assert {"junit.xml", "report.html", "findings.json", "summary.md"} <= {p.name for p in reports.iterdir()}
    # Appended, not overwritten: other steps' summaries stay.
    assert summary.read_text(encoding="utf-8") == "earlier step\n" + (reports / "summary.md").read_text("utf-8")
    # The password reached the suite through the environment only: no output names it.
    import json

    state = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
    assert state["password"] not in done.stdout + done.stderr
    assert state["password"] not in (reports / "junit.xml").read_text(encoding="utf-8")
    # The mock is gone once the script is.
    with pytest.raises(requests.ConnectionError):
        requests.get(state["base_url"], timeout=2)


@pytest.mark.slow
def test_script_gates_on_the_exit_code(tmp_path: Path) -> None:
    done = run_script(tmp_path, MOCK_DEFECTS="racing-cancels", SDDC_RUN_ARGS="--profile behavior --quiet",
                      REPORT_DIR="out/r")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("NOT CONFORMANT:")
    assert (tmp_path / "out" / "r" / "junit.xml").is_file()


def test_script_reports_a_mock_that_cannot_start(tmp_path: Path) -> None:
    done = run_script(tmp_path, MOCK_DEFECTS="no-such-defect")
    assert done.returncode == 3
    assert "the mock exited before it was ready" in done.stderr


def _load(name: str) -> Any:
    return yaml.safe_load((CI_DIR / name).read_text(encoding="utf-8"))


def test_github_actions_recipe() -> None:
    workflow = _load("github-actions.yml")
    steps = workflow["jobs"]["conformance"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert SCRIPT_CALL in runs
    gate = runs.index(SCRIPT_CALL)
    uses = {step.get("uses", "").split("@")[0]: step for step in steps[gate + 1:]}
    junit = uses["mikepenz/action-junit-report"]
    assert junit["with"]["report_paths"] == "reports/ci/junit.xml"
    artifact = uses["actions/upload-artifact"]
    assert "reports/ci/" in artifact["with"]["path"]
    # Publishing happens even when the gate failed; the gate step itself must not be softened.
    assert all("!cancelled()" in step["if"] for step in (junit, artifact))
    assert "continue-on-error" not in steps[gate]
    assert workflow["jobs"]["conformance"]["env"]["REPORT_DIR"] == "reports/ci"


def test_gitlab_recipe() -> None:
    job = _load("gitlab-ci.yml")["conformance"]
    assert SCRIPT_CALL in job["script"]
    assert job["artifacts"]["reports"]["junit"] == "reports/ci/junit.xml"
    assert job["artifacts"]["when"] == "always"
    assert "reports/ci/" in job["artifacts"]["paths"]
    assert job["variables"]["REPORT_DIR"] == "reports/ci"
    assert "allow_failure" not in job


def test_script_is_the_documented_one() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert os.access(SCRIPT, os.X_OK)
    assert "serve --host 127.0.0.1" in text and '--state-file "$STATE_FILE"' in text

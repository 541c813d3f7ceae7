"""Every report carries a runnable re-run command; reproductions never point at a dead port."""

from __future__ import annotations

import html
import json
import shlex
from pathlib import Path

import pytest
from conftest import make_exchange
from test_preflight import run_cli


def _findings(directory: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((directory / "findings.json").read_text("utf-8"))


@pytest.mark.slow
def test_rerun_command_reproduces_the_run(tmp_path: Path) -> None:
    first = run_cli("run", "--max-examples", "7", "--defect", "plain-text-error", "--report-dir", str(tmp_path / "a"))
    assert first.returncode == 1, first.stderr
    document = _findings(tmp_path / "a")
    rerun = document["rerun"]
    assert rerun.startswith("sddc-conformance run ") and f"--seed {document['seed']}" in rerun
    # The same command is in every human-facing output.
    assert rerun in first.stdout
    assert rerun in (tmp_path / "a" / "summary.md").read_text("utf-8")
    assert html.escape(rerun, quote=False) in (tmp_path / "a" / "report.html").read_text("utf-8")
    words = shlex.split(rerun)
    again = run_cli(*words[1:], "--report-dir", str(tmp_path / "b"))
    assert again.returncode == 1, again.stderr
    replay = _findings(tmp_path / "b")
    assert replay["requests_sent"] == document["requests_sent"]
    assert replay["seed"] == document["seed"] and replay["rerun"] == rerun


def test_rerun_of_a_username_run_has_env_references_and_a_token_recipe(tmp_path: Path, reference_server) -> None:  # type: ignore[no-untyped-def]
    from conftest import TEST_PASSWORD

    server = reference_server()
    result = run_cli("run", "--base-url", server.base_url, "--username", "admin@local", "--max-examples", "3",
                     "--profile", "schema", "--report-dir", str(tmp_path / "r"), env={"SDDC_PASSWORD": TEST_PASSWORD})
    assert result.returncode in (0, 1), result.stderr
    document = _findings(tmp_path / "r")
    assert "--username admin@local" in document["rerun"] and TEST_PASSWORD not in json.dumps(document)
    recipe = next(n for n in document["rerun_notes"] if "export SDDC_TOKEN=" in n)
    assert f"curl -s -X POST {server.base_url}/v1/tokens" in recipe and '"\'"$SDDC_PASSWORD"\'"' in recipe


def test_race_reproduction_is_a_parallel_command_against_serve() -> None:
    from conformance.report.evidence import SERVE_PORT, reproduce_lines

    exchange = make_exchange(200, url="http://127.0.0.1:45678/v1/tasks/abc")

    class Run:
        embedded_target = True
        target_url = "http://127.0.0.1:45678"
        defects = ("race-double-cancel",)

    lines = reproduce_lines(exchange, Run(), "BEH-RACE")  # type: ignore[arg-type]
    text = "\n".join(lines)
    assert "45678" not in text
    assert f"sddc-conformance serve --port {SERVE_PORT} --defect race-double-cancel" in text
    assert any(line.startswith("seq 8 | xargs -P 8 -I{} curl ") for line in lines)
    assert f"http://127.0.0.1:{SERVE_PORT}/v1/tasks/abc" in lines[-1]

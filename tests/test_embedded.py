"""`sddc-conformance run` without a target: the embedded reference server in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import helper_outlives_its_parent

from conformance.cli import run as run_module
from conformance.engine import helper as helper_module
from conformance.engine.embedded import EmbeddedServer
from conformance.errors import OptionsError, SuiteCrashed


def _token(base_url: str, state: dict[str, object]) -> str:
    answer = requests.post(f"{base_url}/v1/tokens", json={"username": state["username"],
                                                         "password": state["password"]}, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["accessToken"])


def test_it_serves_the_reference_api_and_creates_tasks_on_request() -> None:
    server = EmbeddedServer().ready()
    try:
        state = server.state
        assert server.base_url.startswith("http://127.0.0.1:")
        assert state["tasks"]["IN_PROGRESS"], state
        headers = {"Authorization": f"Bearer {_token(server.base_url, state)}"}
        created = server.create_tasks("IN_PROGRESS", 2)
        assert len(set(created)) == 2 and not set(created) & set(state["tasks"]["IN_PROGRESS"])
        for task_id in created:
            read = requests.get(f"{server.base_url}/v1/tasks/{task_id}", headers=headers, timeout=10)
            assert read.status_code == 200 and read.json()["status"] == "IN_PROGRESS"
    finally:
        server.stop()
    assert server.process.poll() is not None


def test_its_configuration_reaches_the_child() -> None:
    # A defect switched on in the parent is the child's server's behaviour.
    server = EmbeddedServer(["cancel-finished-task"]).ready()
    try:
        headers = {"Authorization": f"Bearer {_token(server.base_url, server.state)}"}
        finished = server.state["tasks"]["SUCCESSFUL"][0]
        answer = requests.delete(f"{server.base_url}/v1/tasks/{finished}", headers=headers, timeout=10)
        assert answer.status_code == 200
    finally:
        server.stop()


def test_a_refused_defect_is_the_users_mistake() -> None:
    server = EmbeddedServer(["no-such-defect"])
    with pytest.raises(OptionsError, match=r"^--defect: .*no-such-defect"):
        server.ready()
    assert server.process.poll() is not None


def test_a_child_that_dies_is_one_line_with_its_last_words(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same handle around a child that fails before answering.
    script = "import sys; sys.stderr.write('Traceback ...\\nRuntimeError: port\\x1b[31m taken\\n'); sys.exit(3)"
    popen = subprocess.Popen
    monkeypatch.setattr(helper_module.subprocess, "Popen",
                        lambda args, **kw: popen([sys.executable, "-c", script], **kw))
    server = EmbeddedServer()
    with pytest.raises(SuiteCrashed) as caught:
        server.ready()
    # Its traceback stays in a file; only the cleaned last line is said.
    assert str(caught.value) == "the embedded reference server stopped: RuntimeError: port taken"
    server.stop()


ORPHAN = """
import os, sys
from conformance.engine.embedded import EmbeddedServer
server = EmbeddedServer().ready()
print(server.process.pid, flush=True)
os._exit(0)
"""


@pytest.mark.slow
def test_the_child_ends_when_its_parent_dies_without_stopping_it() -> None:
    # kill -9, a crash: the parent's end closes the pipe, and that alone ends the server.
    assert not helper_outlives_its_parent(ORPHAN)


@pytest.mark.slow
def test_a_run_that_owns_its_process_serves_from_the_child(tmp_path: Path) -> None:
    # The command line's entry point: the verdict is the one the in-thread server gives.
    code = run_module.run_command(own_process=True, report_dir=str(tmp_path / "r"), profile="behavior", seed=3,
                                  quiet=True)
    assert code == 0
    findings = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert findings["verdict"] == "CONFORMANT"
    assert findings["target"]["embedded"] is True
    assert findings["target"]["url"].startswith("http://127.0.0.1:")

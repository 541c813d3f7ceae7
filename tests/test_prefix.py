"""A base URL with a path prefix (https://host/sddc-api): every request of the run keeps it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PASSWORD

from conformance.cli import main

PREFIX = "/sddc-api"


def test_run_against_a_prefixed_target_is_conformant_and_every_request_keeps_the_prefix(
    reference_server: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    server = reference_server(path_prefix=PREFIX)
    assert server.base_url.endswith(PREFIX)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"tasks": server.state_document()["tasks"]}), encoding="utf-8")
    monkeypatch.setenv("SDDC_PASSWORD", TEST_PASSWORD)
    reports = tmp_path / "reports"
    with pytest.raises(SystemExit) as exited:
        main(["run", "--base-url", server.base_url, "--username", server.config.username,
              "--tasks-file", str(state), "--seed", "1", "--max-examples", "20",
              "--report-dir", str(reports)])
    out = capsys.readouterr().out
    assert exited.value.code == 0, out
    assert "CONFORMANT" in out and "NOT CONFORMANT" not in out
    paths = [record.path for record in server.request_log]
    assert paths, "the server saw no request"
    # Tokens, listing, product details, cancels and reads: not one request left the prefix.
    assert [p for p in paths if not p.startswith(PREFIX + "/v1/")] == []
    assert any(p == PREFIX + "/v1/tokens" for p in paths)
    assert any(p.startswith(PREFIX + "/v1/tasks/") for p in paths)
    # The reports' reproductions name the prefixed target.
    findings = json.loads((reports / "findings.json").read_text(encoding="utf-8"))
    assert findings["target"]["url"] == server.base_url

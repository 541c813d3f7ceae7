"""Tokens that expire mid-run: the suite logs in again as often as needed, and says plainly when it cannot.

The pure rules (single flight by generation, short-lived tokens, a fresh token refused) are unit
tests in test_target_units.py; here the reference server's `token_lifetime_requests` drives one
whole run, and the command line's one line for each way a run cannot go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_PASSWORD

from conformance.cli import main
from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.engine.target import given_token_expired
from conformance.model import Outcome, Severity
from conformance.options import RunOptions
from conformance.outcome import Verdict

LIFETIME = 20


@pytest.mark.slow
def test_tokens_that_last_20_requests_still_get_a_verdict(reference_server: Callable[..., Any]) -> None:
    # One end-to-end run at the default concurrency (8): every MUST judged, CONFORMANT, and one
    # login per expiry: every token but the last was accepted exactly LIFETIME times (the server
    # counts), so no login was wasted on a request that raced another one's.
    server = reference_server(token_lifetime_requests=LIFETIME)
    state = server.state_document()
    options = RunOptions(base_url=state["base_url"], username=state["username"], password=TEST_PASSWORD,
                         tasks=state["tasks"], max_examples=5, seed=5, settle_timeout=5.0)
    with open_session(options) as session:
        run = execute(session)
        logins, lifetimes = session.target.logins, session.target.token_lifetimes
    musts = [r for r in run.results if r.requirement.severity is Severity.MUST]
    assert [r.requirement.id for r in musts if r.outcome is not Outcome.PASS] == []
    assert run.verdict is Verdict.CONFORMANT
    log = server.request_log
    accepted = sum(1 for r in log if r.authenticated)
    posts = sum(1 for r in log if r.method == "POST" and r.path == "/v1/tokens")
    assert posts == logins == math.ceil(accepted / LIFETIME) > 5
    # The suite's own count is a lower bound (answers still on the way when the 401 came back).
    assert len(lifetimes) == logins - 1 and min(lifetimes) > LIFETIME - 8
    assert any(note.startswith(f"tokens: {logins - 1} expired mid-run") for note in run.notes), run.notes


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        main(["run", "--quiet", *args])
    return int(ended.value.code or 0), capsys.readouterr().err


def test_a_fresh_token_refused_at_once_is_exit_3_in_one_line(
        reference_server: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = reference_server(token_lifetime_requests=0)
    monkeypatch.setenv("SDDC_PASSWORD", TEST_PASSWORD)
    code, err = _run(["--base-url", server.base_url, "--username", server.config.username,
                      "--report-dir", str(tmp_path / "r")], capsys)
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1, err
    assert "refused the token it had just issued" in lines[0] and "NO VERDICT" in lines[0]
    assert TEST_PASSWORD not in err
    # The first token got a second chance (it may have waited before its first use); the
    # re-login's did not: two logins, not a loop.
    assert sum(1 for r in server.request_log if r.method == "POST") == 2


def test_a_given_token_that_expires_says_so_and_how_to_go_on(
        reference_server: Callable[..., Any], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import requests

    server = reference_server(token_lifetime_requests=30)
    token = requests.post(f"{server.base_url}/v1/tokens", timeout=10, json={
        "username": server.config.username, "password": TEST_PASSWORD}).json()["accessToken"]
    code, err = _run(["--base-url", server.base_url, "--token", token, "--profile", "schema",
                      "--max-examples", "40", "--concurrency", "1", "--report-dir", str(tmp_path / "r")], capsys)
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1, err
    assert "the token given with --token expired after 30 requests; give --username and SDDC_PASSWORD" in lines[0]
    assert token not in err
    assert (tmp_path / "r" / "findings.json").is_file()  # what was seen is kept


def test_the_given_token_line_names_the_options_where_they_were_typed() -> None:
    assert given_token_expired(1) == ("the token given with --token expired after 1 request; give --username "
                                      "and SDDC_PASSWORD so the suite can log in again")
    assert "--sddc-token expired after 7 requests; give --sddc-username" in given_token_expired(7, "--sddc-")

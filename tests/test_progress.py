"""The live progress display of a run: rich on a terminal, plain lines elsewhere, silent with --quiet."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import make_exchange

from conformance.cli import progress as progress_module
from conformance.cli.progress import progress, status_line
from conformance.engine.recorder import Recorder

SECRET = "tok-very-secret-9931"


@dataclass
class _Target:
    requests_sent: int = 0


@dataclass
class _Session:
    activity: str = ""
    target: _Target = field(default_factory=_Target)
    recorder: Recorder = field(default_factory=Recorder)


def _failing_session() -> _Session:
    session = _Session(activity=f"schema checks (token {SECRET})", target=_Target(requests_sent=42))
    session.recorder.check(make_exchange(404, "Task not found", content_type="text/plain"))
    return session


def test_status_line_counts_requests_and_failures_and_redacts() -> None:
    line = status_line(_failing_session(), secrets=(SECRET, None))
    assert "42 requests" in line
    assert "0 failures" not in line and "failures" in line
    assert SECRET not in line and "[redacted]" in line


def test_live_display_on_a_terminal_shows_activity_and_stops_on_exceptions() -> None:
    stream = io.StringIO()
    session = _failing_session()
    refreshers: list[threading.Thread] = []
    with pytest.raises(RuntimeError, match="boom"), progress(session, interactive=True, stream=stream,
                                                              secrets=(SECRET,)):
        # Taken inside the block: after it the thread may already be gone, and a loop over
        # nothing would prove nothing.
        refreshers = [t for t in threading.enumerate() if type(t).__module__.startswith("rich")]
        raise RuntimeError("boom")
    text = stream.getvalue()
    assert "\x1b[" in text and "42" in text and "schema checks" in text
    assert SECRET not in text
    # rich's refresh thread was told to stop when the block left; it ends without anyone's help
    assert refreshers, "the live display ran no refresh thread"
    for thread in refreshers:
        thread.join(10)
        assert not thread.is_alive()


def test_plain_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL", 0.01)
    stream = io.StringIO()
    session = _failing_session()
    seen = threading.Event()

    class _Watch(io.StringIO):
        def write(self, text: str) -> int:
            seen.set()
            return stream.write(text)

    with progress(session, interactive=False, stream=_Watch(), secrets=(SECRET,)):
        assert seen.wait(10)
    text = stream.getvalue()
    assert text.startswith("progress: ") and "42 requests" in text
    assert "\x1b[" not in text and SECRET not in text
    assert not [t for t in threading.enumerate() if t.name == "sddc-progress"]


def test_quiet_shows_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    with progress(_failing_session(), quiet=True, interactive=True, stream=stream):
        pass
    assert stream.getvalue() == "" and capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_the_run_command_wraps_execute_in_the_display(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from conformance.cli import progress as progress_module
    from conformance.cli import run as run_command

    entered: list[dict[str, Any]] = []
    real = progress_module.progress

    def spy(session: Any, **kwargs: Any) -> Any:
        entered.append(kwargs)
        return real(session, **kwargs)

    # The command imports the display when it runs (a lean start), from its module.
    monkeypatch.setattr(progress_module, "progress", spy)
    code = run_command.run_command(report_dir=str(tmp_path), max_examples=5, seed=1, quiet=True)
    assert code == 0 and entered and entered[0]["quiet"] is True


CAPTURED_CHILD = r"""
import os, sys, tempfile, threading, io, contextlib
from types import SimpleNamespace
from conformance.cli import progress as p
from conformance.engine.recorder import Recorder

p.PLAIN_INTERVAL = 0.01
shown = threading.Event()
real_status = p.status_line
def status(session, secrets=()):
    line = real_status(session, secrets)
    shown.set()
    return line
p.status_line = status
session = SimpleNamespace(activity="under capture", target=SimpleNamespace(requests_sent=7), recorder=Recorder())
with p.progress(session, interactive=False):
    # What pytest's fd capture and the runner do while the suite runs.
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        with contextlib.redirect_stdout(io.StringIO()):
            assert shown.wait(30)
            session.activity = "still under capture"
            shown.clear()
            assert shown.wait(30)
        os.dup2(saved, 1)
"""


def test_plain_lines_reach_stdout_while_pytest_captures_it() -> None:
    completed = subprocess.run([sys.executable, "-c", CAPTURED_CHILD], capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "progress: under capture | 7 requests" in completed.stdout

"""A helper process of a command-line run (conformance.engine.helper): its pipes and its end."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.engine import helper as helper_module
from conformance.engine.embedded import EmbeddedServer
from conformance.engine.helper import HelperProcess
from conformance.errors import SuiteCrashed


def _running(monkeypatch: pytest.MonkeyPatch, script: str) -> HelperProcess:
    """A helper whose child runs `script` instead of a module."""
    popen = subprocess.Popen
    seen: list[dict[str, Any]] = []

    def start(args: list[str], **kwargs: Any) -> Any:
        seen.append(kwargs)
        return popen([sys.executable, "-c", script], **kwargs)

    monkeypatch.setattr(helper_module.subprocess, "Popen", start)
    helper = HelperProcess("unused", "the helper")
    # Out of reach of the terminal's Ctrl-C, its stderr kept out of the terminal.
    assert seen[0]["start_new_session"] is True and seen[0]["stderr"] not in (None, sys.stderr)
    return helper


ECHO = "import sys\nfor line in sys.stdin: print(line.strip().upper(), flush=True)"


def test_it_sends_and_receives_json_lines_and_none_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    helper = _running(monkeypatch, ECHO)
    helper.send({"a": "b"})
    assert helper.receive() == {"A": "B"}
    helper.send(["x"], last=True)  # type: ignore[arg-type]
    assert helper.receive() == ["X"]
    assert helper.receive() is None  # its stdin closed, so it ended
    helper.stop()


def test_its_last_words_are_its_last_stderr_line_cleaned(monkeypatch: pytest.MonkeyPatch) -> None:
    helper = _running(monkeypatch, "import sys; sys.stderr.write('Traceback\\nBoom: \\x1b[2Jout\\n\\n'); sys.exit(4)")
    assert helper.receive() is None
    assert str(helper.stopped()) == "the helper stopped: Boom: out"
    helper.stop()


def test_a_silent_end_is_its_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    helper = _running(monkeypatch, "import sys; sys.exit(3)")
    assert helper.receive() is None
    assert str(helper.stopped()) == "the helper stopped: exit status 3"
    helper.stop()


def test_one_that_closed_its_stdout_and_hangs_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helper_module, "STOP_TIMEOUT", 0.2)
    helper = _running(monkeypatch, "import os, sys, time; os.close(1); sys.stderr.write('stuck\\n'); "
                                   "sys.stderr.flush(); time.sleep(60)")
    assert helper.receive() is None
    assert str(helper.stopped()) == "the helper stopped: stuck"
    assert helper.process.poll() is not None
    helper.stop()


def test_stop_ends_it_at_once_and_closes_its_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    helper = _running(monkeypatch, "import time; time.sleep(60)")
    started = time.monotonic()
    helper.stop()
    assert time.monotonic() - started < 30  # killed, not waited out: a bound, not a timing
    assert helper.process.returncode is not None
    assert helper.process.stdin.closed and helper.process.stdout.closed  # type: ignore[union-attr]
    assert helper._stderr.closed
    helper.stop()  # twice is harmless


def test_writing_to_one_that_exited_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    helper = _running(monkeypatch, "pass")
    helper.process.wait()
    for _ in range(3):  # a full or broken pipe: the missing answer tells, with its reason
        helper.send({"x": "y" * 100_000})
    assert helper.receive() is None
    helper.stop()


def test_a_helper_that_cannot_start_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    files: list[Any] = []
    real = helper_module.tempfile.TemporaryFile

    def temporary() -> Any:
        files.append(real())
        return files[-1]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(helper_module.tempfile, "TemporaryFile", temporary)
    monkeypatch.setattr(helper_module.subprocess, "Popen", refuse)
    with pytest.raises(SuiteCrashed, match=r"^cannot start the helper: \[Errno 24\] Too many open files$"):
        HelperProcess("unused", "the helper")
    assert files and files[0].closed


def test_a_package_of_the_same_name_in_the_working_directory_is_not_imported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `python -m` would put the working directory first on the path: a `conformance` directory
    # there (anyone's) would run in place of the suite, with the user's credentials around.
    shadow = tmp_path / "conformance"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the shadow package ran')\n")
    monkeypatch.chdir(tmp_path)
    server = EmbeddedServer().ready()
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
    finally:
        server.stop()

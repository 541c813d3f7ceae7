"""Terminal escapes and bidi controls from a target (or a report file) never reach a terminal or a report."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.text import clean_line, strip_controls

ROOT = Path(__file__).resolve().parent.parent
ESC = "\x1b"


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("a\x1b[2Jb", "ab"),  # clear screen
        ("a\x1b]0;pwned\x07b", "ab"),  # OSC 0: window title
        ("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 hyperlink
        ("a\x9b2Jb", "ab"),  # 8-bit CSI
        ("a\x07b", "ab"),  # BEL
        ("a\u202eb\u2066c\u2069", "abc"),  # bidi overrides and isolates
        ("a\rb", "ab"),  # CR rewrites the line
        ("a\x1bcb", "ab"),  # ESC c: full reset
        ("a\x9d0;t\x9cb", "ab"),  # 8-bit OSC
        ("tab\tand\nnewline", "tab\tand\nnewline"),
    ],
)
def test_strip_controls(hostile: str, expected: str) -> None:
    assert strip_controls(hostile) == expected


def test_clean_line_is_one_line() -> None:
    assert clean_line("a\r\nb\nc\td\x1b[31m") == "a b c d"
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in clean_line("".join(map(chr, range(0xA0)))))


BODY = b'{"errorCode":"TASK_NOT_FOUND","message":"Task \x1b[2Jnot found \x1b]0;pwned\x07"}'
STATUS = b"HTTP/1.1 404 \x1b]0;pwned\x07Not\x1b[2J Found\r\n"


class RawServer:
    """Answers every request on 127.0.0.1 with an escape-laden reason phrase, header and body."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(
                        STATUS
                        + b"Content-Type: application/json\r\nServer: evil\x1b[2J\r\n"
                        + f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode()
                        + BODY
                    )
                except OSError:
                    pass

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def test_no_escape_byte_reaches_the_terminal_or_any_report(raw_server: RawServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN", "SDDC_BASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    reports = tmp_path / "reports"
    completed = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--base-url", raw_server.url, "--token", "t",
         "--profile", "schema", "--max-examples", "3", "--report-dir", str(reports)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert completed.returncode in (1, 3), completed.stdout + completed.stderr
    assert ESC not in completed.stdout and ESC not in completed.stderr
    assert "\x07" not in completed.stdout + completed.stderr
    # Whole sequences go, not just the ESC byte: a "[2J" or "]0;" tail means a sequence was mangled, not removed.
    assert "[2J" not in completed.stdout + completed.stderr
    for name in ("summary.md", "junit.xml", "report.html"):
        text = (reports / name).read_text(encoding="utf-8")
        assert ESC not in text and "\x07" not in text and "\x9b" not in text, name
        assert "[2J" not in text and "]0;" not in text and "\ufffd" not in text, name
    assert ESC not in (reports / "findings.json").read_text(encoding="utf-8")
    # The evidence is still there, only defanged: the words of the reason phrase survive.
    assert "404 Not Found" in (reports / "report.html").read_text(encoding="utf-8")

    replay = subprocess.run(
        [sys.executable, "-m", "conformance", "replay", str(reports), "--base-url", raw_server.url, "--token", "t"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert ESC not in replay.stdout and ESC not in replay.stderr, replay.stdout + replay.stderr

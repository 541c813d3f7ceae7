"""No secret anywhere: not in any file a run, bundle or replay writes, nor in anything they print.

The CLI runs for real against a reference server on 127.0.0.1, once with --username and a password
from SDDC_PASSWORD (on a pseudo-terminal, so the live progress display runs too) and once with
--token. A failing defect makes the reports carry requests and curl reproductions.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import pty
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import requests

CLI = [sys.executable, "-c", "from conformance.cli import main; main()"]
USER = "admin@local"
# Characters that URL-encoding, JSON and base64 each transform differently.
PASSWORD = "Pw/7+q=Z&k%ü s3cr3t-4417"
DEFECT = "plain-text-error"


def _base64_cores(data: bytes) -> Iterator[bytes]:
    """Base64 of `data` wherever it sits in a longer value: the stable middle at all 3 alignments."""
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data)
        # The first 4 characters may mix in the prefix and the last 4 the padding or what follows.
        core = encoded[4:-4] if shift else encoded[:-4]
        if len(core) >= 8:
            yield core
            yield core.replace(b"+", b"-").replace(b"/", b"_")


def forms(secret: str) -> set[bytes]:
    raw = secret.encode()
    found = {raw, quote(secret, safe="").encode(), quote_plus(secret).encode(),
             json.dumps(secret).encode()[1:-1]}
    found |= set(_base64_cores(raw))
    found |= set(_base64_cores(f"{USER}:{secret}".encode()))
    return found


def leaks(blob: bytes, secrets: dict[str, set[bytes]]) -> list[str]:
    return [f"{name} as {form!r}" for name, all_forms in secrets.items() for form in all_forms if form in blob]


def test_the_search_finds_encoded_secrets() -> None:
    secrets = {"password": forms(PASSWORD)}
    header = b"Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode())
    for blob in (PASSWORD.encode(), quote(PASSWORD, safe="").encode(), header,
                 b"x" + base64.urlsafe_b64encode(b"ab" + PASSWORD.encode()) + b"y",
                 json.dumps({"p": PASSWORD}).encode()):
        assert leaks(blob, secrets), blob


def _run_on_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(args, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    process.wait(timeout=120)
    return b"".join(chunks)


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN")}
    env.update(TERM="xterm-256color", COLUMNS="120", **extra)
    return env


def _files(directory: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            yield str(path), data
            if path.name.endswith(".tar.gz"):
                yield f"{path} (unpacked)", gzip.decompress(data)
                with tarfile.open(path) as tar:
                    for member in tar.getmembers():
                        handle = tar.extractfile(member)
                        if handle is not None:
                            yield f"{path}!{member.name}", handle.read()


@pytest.fixture
def server(reference_server: Callable[..., Any]) -> Any:
    return reference_server(DEFECT, password=PASSWORD)


@pytest.mark.slow
def test_no_secret_in_any_output_or_file(server: Any, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps({"tasks": server.state_document()["tasks"]}), encoding="utf-8")
    token = requests.post(f"{server.base_url}/v1/tokens", json={"username": USER, "password": PASSWORD},
                          timeout=10).json()["accessToken"]
    out = tmp_path / "out"
    # --record: recording.har holds every exchange, and must hold no secret either.
    common = ["--base-url", server.base_url, "--tasks-file", str(tasks), "--max-examples", "20", "--seed", "9",
              "--record"]
    printed: list[tuple[str, bytes]] = []

    terminal = _run_on_a_terminal([*CLI, "run", *common, "--username", USER, "--report-dir", str(out / "user")],
                                  _environment(SDDC_PASSWORD=PASSWORD))
    printed.append(("run --username (terminal)", terminal))
    plain = subprocess.run([*CLI, "run", *common, "--token", token, "--report-dir", str(out / "token")],
                           capture_output=True, env=_environment(), timeout=120)
    printed.append(("run --token", plain.stdout + plain.stderr))
    for name in ("user", "token"):
        bundled = subprocess.run([*CLI, "bundle", str(out / name), "-o", str(out / f"{name}.tar.gz")],
                                 capture_output=True, env=_environment(), timeout=120)
        printed.append((f"bundle {name}", bundled.stdout + bundled.stderr))
    replayed = subprocess.run([*CLI, "replay", str(out / "token"), "--base-url", server.base_url, "--token", token],
                              capture_output=True, env=_environment(), timeout=120)
    printed.append(("replay --token", replayed.stdout + replayed.stderr))

    # The runs did what this test relies on: failures with reproductions, a live display, a replay.
    assert plain.returncode == 1 and replayed.returncode == 1, plain.stderr + replayed.stderr
    assert b"NOT CONFORMANT" in terminal and b"\x1b[" in terminal
    written = list(_files(out))
    assert {Path(p).name for p, _ in written} >= {"findings.json", "report.html", "summary.md", "junit.xml",
                                                 "manifest.json", "profile.json", "recording.har"}
    assert any(b"curl -X DELETE" in data for _, data in written)
    # The recording opens in a maintained HAR reader, with the login's re-use visible but redacted.
    from haralyzer import HarParser

    har = HarParser(json.loads((out / "user" / "recording.har").read_text(encoding="utf-8")))
    headers = [h for e in har.har_data["entries"] for h in e["request"]["headers"] if h["name"] == "Authorization"]
    assert len(har.har_data["entries"]) > 100 and headers
    assert {h["value"] for h in headers} == {"Bearer [redacted]"}

    secrets = {"password": forms(PASSWORD), "token": forms(token)}
    problems = [f"{where}: {leak}" for where, data in [*printed, *written] for leak in leaks(data, secrets)]
    assert problems == []

"""report.html rendered by a real browser: headless Chromium, offline, from a file:// URL."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import HOSTILE_MARKUP, hostile_run

from conformance.outcome import RunResult
from conformance.report.html import write_html

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2000
FAIL_BANNER = (0xB3, 0x26, 0x1E)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)"),
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},{HEIGHT}", *args,
    ]
    return subprocess.run(command, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(defective_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The defective run's failures plus one hostile answer: markup that must show as text.
    hostile = hostile_run(defective_run)
    run = dataclasses.replace(defective_run, results=defective_run.results + tuple(
        r for r in hostile.results if r.findings and r.requirement.id == "SCH-ERROR-BODY"))
    return write_html(run, tmp_path_factory.mktemp("html"))


def test_the_dom_shows_verdict_and_failures(page: Path, tmp_path: Path) -> None:
    completed = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    dom = completed.stdout.decode("utf-8")
    assert 'id="verdict"' in dom and "NOT CONFORMANT" in dom
    assert 'id="f-SCH-ERROR-BODY"' in dom and "curl -X DELETE" in dom
    assert "<script" not in dom.lower()
    assert "&lt;script&gt;alert" in dom  # the hostile body shows as text


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB(A) PNG into rows (enough PNG for a Chromium screenshot)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(png):
        (length,), kind = struct.unpack(">I", png[offset:offset + 4]), png[offset + 4:offset + 8]
        data = png[offset + 8:offset + 8 + length]
        header = data if kind == b"IHDR" else header
        idat += data if kind == b"IDAT" else b""
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6)
    channels = 3 if color == 2 else 4
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], previous[x - channels] if x >= channels else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            line[x] = (line[x] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, channels, rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def test_the_screenshot_shows_a_rendered_report(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    completed = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    width, channels, rows = _pixels(shot.read_bytes())
    assert width == WIDTH and len(rows) == HEIGHT
    # The verdict banner is styled (inline CSS applied), and the page below it holds many colours (text).
    banner = rows[10][WIDTH // 2 * channels: WIDTH // 2 * channels + 3]
    assert tuple(banner) == FAIL_BANNER
    colours = {rows[y][x:x + 3] for y in range(0, HEIGHT, 7) for x in range(0, width * channels, channels * 5)}
    assert len(colours) > 50


def test_hostile_markup_stays_text(page: Path) -> None:
    assert HOSTILE_MARKUP not in page.read_text(encoding="utf-8")

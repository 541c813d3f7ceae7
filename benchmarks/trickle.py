"""How long a run takes to give up on a target that trickles its answers (the whole-request deadline).

    python -m benchmarks.trickle                        # this tree, --timeout 10
    python -m benchmarks.trickle --timeout 2
    python -m benchmarks.trickle --tree /path/to/other/checkout   # the same against another tree

A raw-socket server on 127.0.0.1 answers the listing and reads at once and trickles every DELETE's
answer one byte every 0.2 s (each byte well inside any read timeout). The suite runs on the
command line (`--profile schema --max-examples 10 --seed 1`); printed: exit code, wall seconds,
requests sent, DELETEs the server saw, and the error line. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DRIP = 0.2
PAGE = json.dumps({"elements": [], "pageMetadata": {"pageNumber": 0, "pageSize": 1, "totalElements": 0,
                                                    "totalPages": 0}}).encode()
NOT_FOUND = b'{"errorCode": "TA_TASK_NOT_FOUND", "message": "Task not found"}'


def _answer(status: int, body: bytes) -> bytes:
    reason = "OK" if status == 200 else "Not Found"
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


class TrickleServer:
    """GETs answered at once; each DELETE's answer sent one byte every DRIP seconds."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.deletes = 0
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5)
                head = b""
                with contextlib.suppress(OSError):  # the client cuts trickles at its deadline
                    while b"\r\n\r\n" not in head:
                        piece = conn.recv(65536)
                        if not piece:
                            return
                        head += piece
                    line = head.split(b"\r\n", 1)[0]
                    if line.startswith(b"GET"):
                        conn.sendall(_answer(200, PAGE) if b"/v1/tasks?" in line else _answer(404, NOT_FOUND))
                        return
                    server.deletes += 1
                    for byte in _answer(404, NOT_FOUND):
                        if server.stop.wait(DRIP):
                            return
                        conn.sendall(bytes([byte]))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", default="10", help="the run's --timeout (default 10)")
    parser.add_argument("--tree", type=Path, help="run the conformance package of another checkout")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.tree:
        env["PYTHONPATH"] = str(args.tree.resolve())
    server = TrickleServer()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "r"
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "conformance", "run", "--quiet", "--base-url",
                                   server.base_url, "--token", "benchmark", "--timeout", args.timeout,
                                   "--profile", "schema", "--max-examples", "10", "--seed", "1",
                                   "--report-dir", str(report)],
                                  capture_output=True, text=True, cwd=scratch, env=env, check=False)
            wall = time.monotonic() - started
            findings = report / "findings.json"
            sent = json.loads(findings.read_text(encoding="utf-8"))["requests_sent"] if findings.is_file() else None
    finally:
        server.close()
    print(f"exit {done.returncode}, {wall:.1f} s wall, {sent} requests sent, {server.deletes} DELETEs seen "
          f"(--timeout {args.timeout})")
    print(done.stderr.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

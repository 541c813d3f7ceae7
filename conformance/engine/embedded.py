"""The embedded reference server of `sddc-conformance run`, in a child process.

Started first, before the run imports pytest, Hypothesis and Schemathesis, it gets ready on
the machine's other core while they load; then its work per request no longer shares this
process's interpreter lock with the suite. Imports here stay light for that reason: the
reference package (uvicorn, Starlette) loads in the child only.

In-process callers (the pytest plugin, the tests) keep the in-thread `ReferenceServer`, whose
store and request log they can look at.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import threading
from typing import IO, Any

from conformance.errors import OptionsError, SuiteCrashed
from conformance.text import clean_line

_STOP_TIMEOUT = 5.0


class EmbeddedServer:
    """A handle on `python -m conformance.reference.child`; see that module for the protocol."""

    def __init__(self, defects: tuple[str, ...] | list[str] = (), settle_seconds: float | None = None) -> None:
        # Its stderr goes to a file (closed by stop()), read only to explain an early exit: a
        # traceback from the child never reaches the user's terminal.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "conformance.reference.child"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                text=True, encoding="utf-8",
                # Out of reach of the terminal's Ctrl-C: the run decides when the server stops.
                start_new_session=True,
            )
        except OSError as exc:
            self._stderr.close()
            raise SuiteCrashed(f"cannot start the embedded reference server: {exc}") from None
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._send({"defects": list(defects), "settle_seconds": settle_seconds})

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        # If it exited, writing fails; the missing answer then says so, with its reason.
        with contextlib.suppress(OSError):
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()

    def _receive(self) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise SuiteCrashed(f"the embedded reference server stopped: {self._last_words()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _last_words(self) -> str:
        try:
            code = self._process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # it closed its stdout and hangs: end it
            self._process.kill()
            code = self._process.wait()
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return clean_line(lines[-1]) if lines else f"exit status {code}"

    def ready(self) -> EmbeddedServer:
        """Wait until it listens; a refused configuration is the user's (`--defect`)."""
        if self._state is None:
            answer = self._receive()
            if "error" in answer:
                self.stop()
                raise OptionsError(f"--defect: {answer['error']}")
            self._state = answer["state"]
        return self

    @property
    def state(self) -> dict[str, Any]:
        """The state document at start: base URL, credentials and task ids by status."""
        return self.ready()._state or {}

    @property
    def base_url(self) -> str:
        return str(self.state["base_url"])

    def create_tasks(self, status: str, count: int = 1) -> list[str]:
        with self._lock:
            self._send({"create_tasks": [status, count]})
            return [str(task_id) for task_id in self._receive()["ids"]]

    def stop(self) -> None:
        """End it at once. It keeps nothing worth a graceful shutdown, which would cost the run's
        last quarter second (uvicorn looks for its exit flag every 0.1 s, then the interpreter
        winds down)."""
        process = self._process
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):  # a pipe it never read
                process.stdin.close()
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()

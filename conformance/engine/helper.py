"""A helper process of a command-line run, spoken to in JSON lines over its stdin and stdout.

The run starts its helpers (`engine.embedded`, `engine.draws`) before it loads the suite, so
this module imports nothing heavy. A helper runs in a session of its own, out of reach of the
terminal's Ctrl-C: the run decides when it ends. Its stderr goes to a temporary file, read only to
explain an early exit: a helper's traceback never reaches the user's terminal.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from typing import IO, Any

from conformance.errors import SuiteCrashed
from conformance.text import clean_line

# How long an exited helper's pipe may stay open before the run ends it.
STOP_TIMEOUT = 5.0


class HelperProcess:
    """`python -m <module>`, its pipes, and its end."""

    def __init__(self, module: str, what: str) -> None:
        self.what = what
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        try:
            self.process = subprocess.Popen(
                # -P: the working directory is not put on the path, so a `conformance` directory
                # where the user runs cannot stand in for the package (Python 3.11+).
                [sys.executable, "-P", "-m", module],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                text=True, encoding="utf-8", start_new_session=True,
            )
        except OSError as exc:
            self._stderr.close()
            raise SuiteCrashed(f"cannot start {what}: {exc}") from None

    def send(self, message: dict[str, Any], *, last: bool = False) -> None:
        """One line to its stdin (`last`: then close it). If it exited, the answer's absence says so."""
        stdin = self.process.stdin
        assert stdin is not None
        with contextlib.suppress(OSError):
            stdin.write(json.dumps(message) + "\n")
            stdin.flush()
            if last:
                stdin.close()

    def receive(self) -> Any:
        """Its next line, decoded; None once it has said everything (its stdout closed)."""
        stdout = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        return json.loads(line) if line else None

    def stopped(self) -> SuiteCrashed:
        """The error for a helper that ended before it should have: its last words, one line."""
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # it closed its stdout and hangs: end it
            self.process.kill()
            code = self.process.wait()
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return SuiteCrashed(f"{self.what} stopped: {clean_line(lines[-1]) if lines else f'exit status {code}'}")

    def stop(self) -> None:
        """End it at once: a helper keeps nothing worth a graceful shutdown."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a pipe it never read; closing twice is harmless
                    pipe.close()
        self._stderr.close()

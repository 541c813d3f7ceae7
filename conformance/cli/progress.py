"""Live progress of a run: a rich display on a terminal, plain lines otherwise.

The display only ever shows the suite's own activity text and counters; activity text is still
passed through `redact` because it is the one free-text field, and a secret must never reach a
terminal recording or a CI log.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from conformance.text import clean_line

if TYPE_CHECKING:
    from rich.table import Table

# Plain mode prints one line per new activity at most this often, so CI logs stay short.
PLAIN_INTERVAL = 2.0
REFRESH_PER_SECOND = 8


class Observed(Protocol):
    """What the display reads from a SuiteSession (a protocol keeps tests free of real sessions)."""

    activity: str
    target: Any
    recorder: Any


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def failures_so_far(session: Observed) -> int:
    """Failed evaluations of MUST and SHOULD requirements (MAY notes never fail)."""
    return sum(r.failures for r in session.recorder.results())


def status_line(session: Observed, secrets: Iterable[str | None] = ()) -> str:
    # Activity names task ids the target listed: no terminal controls.
    activity = clean_line(redact(session.activity or "starting", secrets))
    budget = getattr(getattr(session.target, "config", None), "max_requests", None)
    # The budget is the most the run can send: a reader of a CI log sees how far along it is.
    sent = f"{session.target.requests_sent}/{budget}" if budget else str(session.target.requests_sent)
    return f"{activity} | {sent} requests | {failures_so_far(session)} failures"


class _Display:
    """Rebuilt on every refresh, so it always shows the session's current state."""

    def __init__(self, session: Observed, secrets: tuple[str | None, ...]) -> None:
        from rich.spinner import Spinner

        self.session = session
        self.secrets = secrets
        self.spinner = Spinner("dots")

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        # Text(), not a str: rich would read "[...]" in a target's task id as markup.
        grid.add_row(self.spinner, Text(clean_line(redact(self.session.activity or "starting", self.secrets))))
        failures = failures_so_far(self.session)
        style = "bold red" if failures else "green"
        grid.add_row(
            "",
            f"[cyan]{self.session.target.requests_sent}[/] requests sent, [{style}]{failures}[/] failures",
        )
        return grid


@contextmanager
def _live(session: Observed, stream: TextIO, secrets: tuple[str | None, ...]) -> Iterator[None]:
    # Imported here: a run with no terminal (a CI log, --quiet) never loads rich (about 0.05 s).
    from rich.console import Console
    from rich.live import Live

    console = Console(file=stream, force_terminal=True, highlight=False)
    # The runner redirects sys.stdout while pytest runs; Live must not capture or swap it.
    live = Live(_Display(session, secrets), console=console, refresh_per_second=REFRESH_PER_SECOND,
                transient=True, redirect_stdout=False, redirect_stderr=False)
    with live:
        yield


@contextmanager
def _plain(session: Observed, stream: TextIO, secrets: tuple[str | None, ...]) -> Iterator[None]:
    stop = threading.Event()

    def report() -> None:
        last = ""
        while not stop.wait(PLAIN_INTERVAL):
            line = status_line(session, secrets)
            if line != last:
                print(f"progress: {line}", file=stream, flush=True)
                last = line

    thread = threading.Thread(target=report, name="sddc-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def progress(
    session: Observed,
    *,
    quiet: bool = False,
    interactive: bool | None = None,
    stream: TextIO | None = None,
    secrets: Iterable[str | None] = (),
) -> Iterator[None]:
    """Show the run's progress while the block runs; always stops, whatever the block raises.

    interactive=None means: a live display when stdout is a terminal, else a plain line now and
    then on stdout (a CI log). Never stderr: scripts and tests read it as the error channel, one
    line per error. --quiet shows nothing, so its stdout stays the verdict line alone.
    """
    if quiet:
        yield
        return
    with contextlib.ExitStack() as stack:
        out = stream or stack.enter_context(_original_stdout())
        if interactive is None:
            interactive = out.isatty()
        display = _live if interactive else _plain
        stack.enter_context(display(session, out, tuple(secrets)))
        yield


@contextmanager
def _original_stdout() -> Iterator[TextIO]:
    """A private handle on the process's stdout as it is now.

    While the suite runs, pytest's capture points file descriptor 1 at a temporary file and the
    runner points sys.stdout at a buffer; a duplicate of the descriptor still reaches the terminal.
    """
    try:
        fd = os.dup(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        # No real descriptor (an embedding host, click's CliRunner): its stream is all there is.
        yield sys.stdout
        return
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    with open(fd, "w", encoding=encoding, errors="replace", buffering=1, closefd=True) as handle:
        yield handle

"""Ctrl-C and SIGTERM during a run: stop sending, keep what was seen, no traceback."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from conformance.errors import Interrupted


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same road as Ctrl-C, so pytest stops the suite the same way.
    raise KeyboardInterrupt


@contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` (exit 130) in the main thread."""
    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt) if installed else None
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted") from None
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)

"""What threads that run Hypothesis side by side need from the interpreter."""

from __future__ import annotations

import ast
import functools
import threading
from typing import Any

_AST_LOCK = threading.RLock()


def serialize_ast_parsing() -> None:
    """Let only one thread at a time build an AST with `ast.parse` (process-wide, idempotent).

    CPython 3.11 counts the AST constructor's recursion depth in per-interpreter state, not per
    thread, so two threads parsing at once can fail with a spurious "SystemError: AST constructor
    recursion depth mismatch" (CPython gh-106905). With the scenarios beside the schema phase, two
    threads do parse: Hypothesis describes strategies and drawn values in both, and pytest
    formats a failing item's traceback in the main thread. Parsing is rare and short; one lock
    costs nothing measurable. Every AST user met here (Hypothesis, pytest, `traceback`,
    `inspect`) goes through `ast.parse`.
    """
    original = ast.parse
    if getattr(original, "_serialized", False):
        return

    @functools.wraps(original)
    def parse(*args: Any, **kwargs: Any) -> Any:
        with _AST_LOCK:
            return original(*args, **kwargs)

    parse._serialized = True  # type: ignore[attr-defined]
    ast.parse = parse


__all__ = ["serialize_ast_parsing"]

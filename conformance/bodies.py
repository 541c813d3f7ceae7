"""Bounded JSON decoding for bodies from untrusted servers.

`json.loads` and `jsonschema` recurse; a hostile body nested thousands of levels deep would raise
RecursionError (or worse). The depth is measured without recursion before anything parses it.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

# Roughly 500 levels of nestedErrors (each level is an object inside an array). Real builds
# nest a handful of levels; the limit is far above that and far below where parsers break.
MAX_JSON_DEPTH = 1000

# Strings are matched whole so brackets inside them are not counted.
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)

# Headroom for json and jsonschema at MAX_JSON_DEPTH; both recurse several frames per level.
_RECURSION_LIMIT = 20 * MAX_JSON_DEPTH + 1000


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in body, found without recursion."""
    depth = deepest = 0
    for match in _STRUCTURE.finditer(body):
        token = match.group()
        first = token[:1]
        if first in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
        elif first in (b"]", b"}"):
            depth -= 1
    return deepest


@dataclass(frozen=True)
class JsonBody:
    """The outcome of decoding a body as JSON: a value, or why there is none."""

    value: Any = None
    error: str | None = None
    depth: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def ensure_recursion_headroom() -> None:
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)


def decode_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> JsonBody:
    if not body.strip():
        return JsonBody(error="the body is empty")
    depth = json_depth(body)
    if depth > max_depth:
        return JsonBody(
            error=f"the body nests {depth} levels deep, over the suite's limit of {max_depth}; "
            "it was not parsed",
            depth=depth,
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return JsonBody(error=f"the body is not valid UTF-8 (byte {exc.start})", depth=depth)
    ensure_recursion_headroom()
    try:
        return JsonBody(value=json.loads(text), depth=depth)
    except json.JSONDecodeError as exc:
        return JsonBody(error=f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return JsonBody(error="the body is nested too deeply to parse", depth=depth)

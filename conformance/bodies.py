"""Bounded JSON decoding for bodies from untrusted servers.

`json.loads` and `jsonschema` recurse; a hostile body nested thousands of levels deep would raise
RecursionError (or worse). The depth is measured without recursion before anything parses it.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import sys
from dataclasses import dataclass
from typing import Any

# Roughly 500 levels of nestedErrors (each level is an object inside an array). Real builds
# nest a handful of levels; the limit is far above that and far below where parsers break.
MAX_JSON_DEPTH = 1000

# Strings are removed whole so brackets inside them are not counted (an unterminated string is
# not a match, as in any JSON scanner that then fails). The unrolled form is several times faster.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
# Openers become 2 and closers 0, so the running sum minus the bracket count is the depth.
_OPEN_AS_TWO = bytes(2 if c in b"[{" else 0 for c in range(256))

# Headroom for json and jsonschema at MAX_JSON_DEPTH; both recurse several frames per level.
_RECURSION_LIMIT = 20 * MAX_JSON_DEPTH + 1000


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in body, found without recursion.

    Every step runs in C (regex substitution, translate, accumulate): a Python loop over the
    matches took 1.6 s for a 10 MB body, more than parsing and validating it.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    if not brackets:
        return 0
    running = map(operator.sub, itertools.accumulate(brackets.translate(_OPEN_AS_TWO)), itertools.count(1))
    return max(0, max(running))


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
        return JsonBody(error=f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                        depth=depth)
    except RecursionError:
        return JsonBody(error="the body is nested too deeply to parse", depth=depth)

"""Bounded JSON decoding: depth measured without recursion, every failure a message, never an exception."""

from __future__ import annotations

import sys

import pytest

from conformance.bodies import MAX_JSON_DEPTH, decode_json, json_depth


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"7", 0),
        (b"{}", 1),
        (b"[[], {}]", 2),
        (b'{"a": [{"b": []}]}', 4),
        (b'"[[[[{{{{"', 0),
        (b'{"message": "[[[ {{{ ]]] }"}', 1),
        (b'{"message": "a \\" [[[[ \\" b"}', 1),
        (b'{"message": "ends with a backslash \\\\", "x": [[1]]}', 3),
        (b'["\\\\\\"[", [["]]]]"]]]', 3),
    ],
)
def test_json_depth_ignores_brackets_inside_strings(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_depth_10000_measured_without_recursion_error() -> None:
    body = b"[" * 10_000 + b"]" * 10_000
    assert json_depth(body) == 10_000
    # Far past any recursion limit the suite sets: a recursive measure would break here.
    huge = sys.getrecursionlimit() * 5
    assert json_depth(b'{"nestedErrors":[' * huge + b"{}" + b"]}" * huge) == 2 * huge + 1
    decoded = decode_json(body)
    assert not decoded.ok and decoded.depth == 10_000
    assert decoded.error == (
        f"the body nests 10000 levels deep, over the suite's limit of {MAX_JSON_DEPTH}; it was not parsed"
    )


def test_decode_at_the_limit_parses() -> None:
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    decoded = decode_json(body)
    assert decoded.ok and decoded.depth == MAX_JSON_DEPTH
    over = decode_json(b"[" + body + b"]")
    assert not over.ok and "over the suite's limit" in (over.error or "")


def test_custom_limit() -> None:
    assert not decode_json(b"[[[]]]", max_depth=2).ok
    assert decode_json(b"[[[]]]", max_depth=3).ok


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is empty"),
        (b"  \r\n\t", "the body is empty"),
        (b"\xff\xfe{}", "the body is not valid UTF-8 (byte 0)"),
        (b'{"message": "\xc3"}', "the body is not valid UTF-8 (byte 13)"),
        (b"Task not found", "the body is not JSON: Expecting value at line 1 column 1"),
        (b'{"message": "x"', "the body is not JSON"),
        (b'{"a": 1} trailing', "the body is not JSON: Extra data"),
    ],
)
def test_decode_json_errors(body: bytes, message: str) -> None:
    decoded = decode_json(body)
    assert not decoded.ok and decoded.value is None
    assert decoded.error is not None and decoded.error.startswith(message)


def test_decode_json_values() -> None:
    assert decode_json(b'{"message": "caf\xc3\xa9"}').value == {"message": "café"}
    assert decode_json(b"[1, 2]").value == [1, 2]
    assert decode_json(b"null").ok and decode_json(b"null").value is None


@pytest.mark.parametrize("body", [b"]", b"]]]", b"}]", b'"[" ]'])
def test_json_depth_of_closers_alone_is_zero(body: bytes) -> None:
    # Unbalanced closers never open a level: the running depth goes negative, and depth is 0, not less.
    assert json_depth(body) == 0


def test_the_documented_limit_is_1000_levels() -> None:
    # docs/DESIGN.md promises 1000 levels: a body exactly that deep is parsed, one level more is not.
    assert decode_json(b"[" * 1000 + b"]" * 1000).ok
    over = decode_json(b"[" * 1001 + b"]" * 1001)
    assert over.error == "the body nests 1001 levels deep, over the suite's limit of 1000; it was not parsed"


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"   ", 0),
        (b"Task not found", 0),
        (b'{"a": [1,}', 2),
        (b"\xff[[]]", 2),
        (b"[[7]]", 2),
    ],
)
def test_decoded_depth_is_the_measured_depth_whatever_the_outcome(body: bytes, depth: int) -> None:
    assert decode_json(body).depth == depth

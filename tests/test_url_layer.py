"""Well-formed vs URL-hostile ids: the rule, the checks' use of it, and runs against the reference."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from conftest import run_in_process

from conformance.engine.target import Target, TargetConfig
from conformance.engine.urls import MAX_WELL_FORMED_BYTES, URL_HOSTILE, WELL_FORMED, url_class, url_hostility
from conformance.model import Exchange, Outcome
from conformance.requirements.checks import CheckContext, documented_status, no_server_error, url_layer_refusal
from conformance.tasks import encode_id

HOSTILE = [
    "a/b", "/", "a\\b", "%", "a%b", "a;b", ";", "a\x00b", "a\r\nb", "\t", "a\x7fb", "a\x85b",
    ".", "..", "b" * (MAX_WELL_FORMED_BYTES + 1), "%C0%AF", "%zz",
]
WELL_FORMED_IDS = [
    "a", "é", "a b", " a", "!", "$&'()*+,=:@~_-", "a.b", "...", ".a", "\U0001f600", "e\u0301", "[x]", "?", "#",
    "6F1C9A2E-3B4D-4E5F-8A7B-9C0D1E2F3A4B", "urn:uuid:6f1c9a2e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
    "b" * MAX_WELL_FORMED_BYTES,
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_url_hostile_ids_sent_encoded(raw: str) -> None:
    assert url_class(raw, encode_id(raw)) == URL_HOSTILE, url_hostility(raw, encode_id(raw))


@pytest.mark.parametrize("raw", WELL_FORMED_IDS)
def test_well_formed_ids(raw: str) -> None:
    assert url_class(raw, encode_id(raw)) == WELL_FORMED, url_hostility(raw, encode_id(raw))


@pytest.mark.parametrize("encoded", ["%zz", "%2", "%C0%AF", "%E0%80%AF", "a%2Eb", "a%2eb", "%E2%82"])
def test_url_hostile_wire_forms_sent_raw(encoded: str) -> None:
    from urllib.parse import unquote

    assert url_class(unquote(encoded), encoded) == URL_HOSTILE


def test_the_length_bound_counts_encoded_bytes() -> None:
    # "é" is six bytes on the wire: 342 of them are 2052 bytes, over the bound.
    assert url_class("é" * 341, encode_id("é" * 341)) == WELL_FORMED
    assert url_class("é" * 342, encode_id("é" * 342)) == URL_HOSTILE


def classed(exchange: Exchange, id_class: str) -> Exchange:
    return dataclasses.replace(exchange, request=dataclasses.replace(exchange.request, id_class=id_class))


@pytest.mark.parametrize("status", [400, 414])
def test_a_url_layer_refusal_of_a_hostile_id_is_information(exchange: Callable[..., Exchange], status: int) -> None:
    refused = classed(exchange(status, "<html>Bad Request</html>", content_type="text/html"), URL_HOSTILE)
    ctx = CheckContext.default()
    assert documented_status(ctx, refused) is None
    notes = url_layer_refusal(ctx, refused)
    assert notes and str(status) in str(notes[0])


def test_strict_urls_fails_the_refusal(exchange: Callable[..., Exchange]) -> None:
    refused = classed(exchange(400, "<html>Bad Request</html>", content_type="text/html"), URL_HOSTILE)
    ctx = CheckContext.default(strict_urls=True)
    assert documented_status(ctx, refused)
    assert url_layer_refusal(ctx, refused) is None


def test_a_400_for_a_well_formed_id_still_fails(exchange: Callable[..., Exchange]) -> None:
    ctx = CheckContext.default()
    for id_class in (WELL_FORMED, None):
        answered = exchange(400, {"message": "bad id"})
        if id_class is not None:
            answered = classed(answered, id_class)
        assert documented_status(ctx, answered)
        assert url_layer_refusal(ctx, answered) is None


@pytest.mark.parametrize("status", [201, 302, 409, 503])
def test_other_answers_to_hostile_ids_are_judged_as_ever(exchange: Callable[..., Exchange], status: int) -> None:
    ctx = CheckContext.default()
    answered = classed(exchange(status, {"message": "x"}), URL_HOSTILE)
    assert url_layer_refusal(ctx, answered) == []
    if status >= 500:
        assert no_server_error(ctx, answered)
    elif status in (201, 302):
        assert documented_status(ctx, answered)


def test_target_cancel_classifies_the_id(reference_server: Callable[..., Any]) -> None:
    server = reference_server()
    target = Target(TargetConfig(base_url=server.base_url, username=server.config.username,
                                 password=server.config.password))
    target.login()
    hostile = target.cancel(encode_id("a/b"), purpose="test", task_id="a/b")
    fine = target.cancel(encode_id("a b"), purpose="test", task_id="a b")
    raw = target.cancel("%zz", purpose="test")
    assert (hostile.request.id_class, fine.request.id_class, raw.request.id_class) == (
        URL_HOSTILE, WELL_FORMED, URL_HOSTILE)


def failed(result: Any) -> set[str]:
    return {r.requirement.id for r in result.results if r.outcome is Outcome.FAIL}


def test_servlet_url_hygiene_is_conformant_and_reports_the_refusals() -> None:
    result = run_in_process("servlet-url-hygiene", max_examples=20)
    assert failed(result) == set()
    layer = next(r for r in result.results if r.requirement.id == "SCH-URL-LAYER")
    assert layer.findings, "the HTTP layer's refusals are reported as information"


@pytest.mark.slow
def test_servlet_url_hygiene_fails_sch_status_with_strict_urls() -> None:
    result = run_in_process("servlet-url-hygiene", max_examples=20, strict_urls=True)
    assert failed(result) == {"SCH-STATUS"}


# The id defects' failed sets, pinned here; that a run fails exactly its entry's set (and with its
# evidence: the status code) is the detection matrix's row for each (tests/test_detection_matrix.py).
@pytest.mark.parametrize(("defect", "expected"), [
    ("odd-id-400", {"SCH-STATUS"}),
    ("reserved-char-500", {"SRV-NO-5XX"}),
    ("unknown-uuid-400", {"SCH-STATUS", "BEH-UNKNOWN-404", "BEH-STATEFUL"}),  # the model meets the 400 too
    ("generated-204", {"SCH-STATUS", "BEH-UNKNOWN-404"}),
])
def test_id_defects_fail_exactly_their_requirements(defect: str, expected: set[str]) -> None:
    from conformance.reference.defects import DEFECTS

    assert set(DEFECTS[defect].requirements) == expected
    assert DEFECTS[defect].expect == "fail"

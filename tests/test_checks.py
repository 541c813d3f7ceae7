"""Every registered response check, fed crafted exchanges; the registry; the Recorder; the verdict."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from conftest import make_exchange

from conformance import requirements
from conformance.bodies import MAX_JSON_DEPTH
from conformance.engine.recorder import EXAMPLES_PER_REQUIREMENT, INFO_NOTES_PER_REQUIREMENT, Recorder
from conformance.model import Exchange, Level, Outcome, Violation
from conformance.outcome import RunResult
from conformance.requirements import Kind, Profile, Severity
from conformance.requirements.checks import CheckContext
from conformance.spec import Fragment, load_fragment

CTX = CheckContext.default()
VALID_ERROR = {"errorCode": "TA_TASK_NOT_FOUND", "message": "Task with ID x not found", "arguments": ["x"],
               "referenceToken": "8465IV"}


def run(requirement_id: str, exchange: Exchange, ctx: CheckContext = CTX) -> Sequence[Violation] | None:
    """Run one check the way the Recorder does: through the registry."""
    return requirements.get(requirement_id).func(ctx, exchange)


def messages(violations: Sequence[Violation] | None) -> list[str]:
    assert violations is not None, "the check did not apply"
    return [str(v) for v in violations]


def nested(depth: int, innermost: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Error whose nestedErrors chain is `depth` levels deep, built without recursion."""
    node: dict[str, Any] = innermost or {"message": "bottom"}
    for i in range(depth):
        node = {"errorCode": f"E{i}", "nestedErrors": [node]}
    return node


def deep_text(levels: int) -> bytes:
    # json.dumps recurses; text is built by hand for depths past the recursion limit.
    return (b'{"nestedErrors":[' * levels) + b"{}" + (b"]}" * levels)


# -- SCH-STATUS --------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [204, 202, 400, 401, 405, 302])
def test_status_undocumented_fails_and_names_the_code(status: int) -> None:
    headers = {"Location": "http://127.0.0.2/v1/tasks/x"} if status == 302 else None
    [violation] = messages(run("SCH-STATUS", make_exchange(status, b"", headers=headers)))
    assert f"undocumented status {status}" in violation
    assert "200, 404, 409, 500" in violation
    if status == 302:
        assert "http://127.0.0.2/v1/tasks/x" in violation and "not followed" in violation


@pytest.mark.parametrize("status", [200, 404, 409, 500])
def test_status_documented_passes(status: int) -> None:
    assert run("SCH-STATUS", make_exchange(status, VALID_ERROR)) == []


def test_status_does_not_apply_to_a_transport_error() -> None:
    assert run("SCH-STATUS", make_exchange(None)) is None


def test_documented_statuses_come_from_the_fragment(monkeypatch: pytest.MonkeyPatch) -> None:
    fragment = load_fragment()
    document = copy.deepcopy(fragment.document)
    responses = document["paths"]["/v1/tasks/{id}"]["delete"]["responses"]
    responses["204"] = {"description": "No content"}
    del responses["409"]
    edited = Fragment(path=fragment.path, raw_bytes=fragment.raw_bytes, document=document)
    ctx = CheckContext(fragment=edited)
    assert run("SCH-STATUS", make_exchange(204, b""), ctx) == []
    # The unedited fragment still rejects the 204: the documented set is read, not hard-coded.
    assert run("SCH-STATUS", make_exchange(204, b"")) == [
        Violation("undocumented status 204; the fragment documents 200, 404, 409, 500")
    ]
    assert "undocumented status 409" in messages(run("SCH-STATUS", make_exchange(409, VALID_ERROR), ctx))[0]
    # The 204 of the edited fragment documents no body, so the empty-success check covers it too.
    assert run("SCH-200-EMPTY", make_exchange(204, b"{}"), ctx) == [
        Violation("204 carries a 2-byte body (application/json); the fragment documents no body for it")
    ]


# -- SCH-200-EMPTY -------------------------------------------------------------------------------------

def test_200_with_a_body_fails() -> None:
    [violation] = messages(run("SCH-200-EMPTY", make_exchange(200, {"id": "t", "status": "CANCELLED"})))
    assert "200 carries a" in violation and "application/json" in violation


def test_200_empty_passes() -> None:
    assert run("SCH-200-EMPTY", make_exchange(200, b"", content_type=None)) == []


@pytest.mark.parametrize("status", [404, 409, 500, 204])
def test_200_empty_applies_only_to_200(status: int) -> None:
    assert run("SCH-200-EMPTY", make_exchange(status, VALID_ERROR)) is None


# -- SCH-ERROR-BODY ------------------------------------------------------------------------------------

def test_error_body_lists_every_violation_with_its_instance_path() -> None:
    body = {
        "message": 7,
        "arguments": ["ok", 1],
        "context": "tasks-service",
        "nestedErrors": [{"causes": [{"message": "fine", "type": "x"}, {"message": 7, "type": ["a"]}]}],
    }
    found = messages(run("SCH-ERROR-BODY", make_exchange(404, body)))
    assert found == [
        "/arguments/1: 1 is not of type 'string'",
        "/context: 'tasks-service' is not of type 'object'",
        "/message: 7 is not of type 'string'",
        "/nestedErrors/0/causes/1/message: 7 is not of type 'string'",
        "/nestedErrors/0/causes/1/type: ['a'] is not of type 'string'",
    ]


@pytest.mark.parametrize("status", [404, 409, 500])
def test_error_body_valid_passes(status: int) -> None:
    assert run("SCH-ERROR-BODY", make_exchange(status, VALID_ERROR)) == []


@pytest.mark.parametrize("body", [{}, {"message": "m"}, {"errorCode": "E"}, {"message": "m", "errorCode": "E"}])
def test_error_body_minimal_passes(body: dict[str, Any]) -> None:
    assert run("SCH-ERROR-BODY", make_exchange(404, body)) == []


NEWER_BUILD = {
    **VALID_ERROR,
    "label": "Task",
    "remediationUrl": "https://docs.vmware.com/x",
    "context": {"component": "tasks"},
    "notifications": [{"severity": "ERROR", "message": "m", "remediations": [{"message": "r", "link": "l"}],
                       "impactMessage": "i"}],
    "nestedErrors": [{"message": "n", "label": "inner"}],
}


def test_error_body_accepts_newer_build_fields() -> None:
    assert run("SCH-ERROR-BODY", make_exchange(404, NEWER_BUILD)) == []


def test_error_body_validates_text_plain_labelled_json() -> None:
    bad = make_exchange(404, {"message": 7}, content_type="text/plain")
    assert messages(run("SCH-ERROR-BODY", bad)) == ["/message: 7 is not of type 'string'"]
    assert run("SCH-ERROR-BODY", make_exchange(404, VALID_ERROR, content_type="text/plain")) == []


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ([VALID_ERROR], "application/json", "is not of type 'object'"),
        (b"", "application/json", "the body is empty"),
        (b"", None, "the body is empty"),
        (b"Task not found", "text/plain", "the body is not JSON"),
        (b'{"message": "x"', "application/json", "the body is not JSON"),
        (b"<html><body>500</body></html>", "text/html", "the body is not JSON"),
        (b'{"message": "\xff\xfe"}', "application/json", "not valid UTF-8"),
    ],
    ids=["array", "empty", "empty-no-type", "plain-text", "invalid-json", "html", "invalid-utf8"],
)
def test_error_body_rejects(body: Any, content_type: str | None, expected: str) -> None:
    found = messages(run("SCH-ERROR-BODY", make_exchange(404, body, content_type=content_type)))
    assert found and expected in found[0], found


def test_error_body_rejects_a_truncated_body() -> None:
    truncated = make_exchange(404, json.dumps(VALID_ERROR)[:20], truncated=True)
    [violation] = messages(run("SCH-ERROR-BODY", truncated))
    assert "larger than the suite reads" in violation


def test_error_body_rejects_a_body_deeper_than_the_limit_without_recursion_error() -> None:
    for levels in (MAX_JSON_DEPTH // 2 + 1, 5_000, 50_000):
        [violation] = messages(run("SCH-ERROR-BODY", make_exchange(404, deep_text(levels))))
        assert f"nests {2 * levels + 1} levels deep" in violation
        assert f"limit of {MAX_JSON_DEPTH}" in violation


def test_error_body_accepts_300_levels_of_valid_nesting() -> None:
    assert run("SCH-ERROR-BODY", make_exchange(404, deep_text(300))) == []
    assert run("SCH-ERROR-BODY", make_exchange(404, nested(300))) == []


def test_error_body_reports_a_violation_300_levels_down() -> None:
    body = nested(300, {"errorCode": 123})
    [violation] = run("SCH-ERROR-BODY", make_exchange(404, body)) or []
    assert violation.path == "/nestedErrors/0" * 300 + "/errorCode"
    assert violation.message == "123 is not of type 'string'"


def test_error_body_does_not_apply_to_200() -> None:
    assert run("SCH-ERROR-BODY", make_exchange(200, b"not json")) is None


# -- SCH-EXTENSIONS ------------------------------------------------------------------------------------

def test_extensions_are_reported_as_information_and_never_fail() -> None:
    notes = run("SCH-EXTENSIONS", make_exchange(404, NEWER_BUILD)) or []
    assert [v.path for v in notes] == ["/label", "/nestedErrors/0/label", "/notifications", "/remediationUrl"]
    recorder = Recorder()
    assert recorder.check(make_exchange(404, NEWER_BUILD)) == []
    result = _results(recorder)["SCH-EXTENSIONS"]
    assert result.outcome is Outcome.PASS and result.failures == 0
    assert {f.level for f in result.findings} == {Level.INFO}
    assert "/label" in [v.path for v in result.findings[0].violations]


def test_extensions_in_causes_are_noticed() -> None:
    body = {"causes": [{"message": "m", "type": "t", "stack": "..."}]}
    assert [v.path for v in run("SCH-EXTENSIONS", make_exchange(404, body)) or []] == ["/causes/0/stack"]


def test_extensions_nothing_to_report_for_seed_fields() -> None:
    assert run("SCH-EXTENSIONS", make_exchange(404, VALID_ERROR)) == []


# -- SCH-ERROR-MEDIA -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "text/html;charset=utf-8", None])
def test_error_media_fails_when_not_labelled_json(content_type: str | None) -> None:
    [violation] = messages(run("SCH-ERROR-MEDIA", make_exchange(404, VALID_ERROR, content_type=content_type)))
    assert "not JSON" in violation
    assert requirements.get("SCH-ERROR-MEDIA").severity is Severity.SHOULD


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json;charset=UTF-8", "application/problem+json",
     "Application/JSON ; charset=utf-8", "application/vnd.vmware.error+json"],
)
def test_error_media_accepts_json_types(content_type: str) -> None:
    assert run("SCH-ERROR-MEDIA", make_exchange(404, VALID_ERROR, content_type=content_type)) == []


# -- SRV-NO-5XX and SRV-ANSWERS -----------------------------------------------------------------------

def test_no_5xx_fails_for_a_500_with_a_valid_error_and_says_so() -> None:
    [violation] = messages(run("SRV-NO-5XX", make_exchange(500, VALID_ERROR, reason="Internal Server Error")))
    assert violation.startswith("500 Internal Server Error") and "with a valid Error body" in violation
    # ...and the valid body itself is fine: only the server failure is reported.
    assert run("SCH-ERROR-BODY", make_exchange(500, VALID_ERROR)) == []


def test_no_5xx_says_when_the_body_is_not_an_error() -> None:
    [violation] = messages(run("SRV-NO-5XX", make_exchange(503, b"<html/>", content_type="text/html")))
    assert "without a valid Error body" in violation


@pytest.mark.parametrize("status", [200, 404, 409, 400])
def test_no_5xx_passes_below_500(status: int) -> None:
    assert run("SRV-NO-5XX", make_exchange(status, VALID_ERROR)) == []


def test_answers_fails_for_a_transport_error() -> None:
    assert messages(run("SRV-ANSWERS", make_exchange(None, error="no answer within 1 s"))) == [
        "no answer within 1 s"
    ]
    assert run("SRV-ANSWERS", make_exchange(404, VALID_ERROR)) == []


def test_transport_error_only_fails_srv_answers() -> None:
    recorder = Recorder()
    [finding] = recorder.check(make_exchange(None, error="connection refused"))
    assert finding.requirement_id == "SRV-ANSWERS"


# -- the registry --------------------------------------------------------------------------------------

def test_every_requirement_is_complete() -> None:
    catalogue = requirements.catalogue()
    ids = [r.id for r in catalogue]
    assert len(ids) == len(set(ids))
    for r in catalogue:
        assert r.id and r.id == r.id.strip() and r.id.upper() == r.id
        assert isinstance(r.severity, Severity) and isinstance(r.profile, Profile) and isinstance(r.kind, Kind)
        assert r.title.strip() and r.seed.strip() and r.source.strip(), r.id
        assert callable(r.func)


def test_response_checks_registered() -> None:
    ids = {r.id for r in requirements.response_checks()}
    assert {"SRV-ANSWERS", "SCH-STATUS", "SCH-200-EMPTY", "SCH-ERROR-BODY", "SCH-ERROR-MEDIA",
            "SCH-EXTENSIONS", "SRV-NO-5XX"} <= ids
    assert requirements.get("SCH-EXTENSIONS").severity is Severity.MAY


def test_seed_sentences_quote_the_seed() -> None:
    from conftest import SEED_TEXT

    if not SEED_TEXT.is_file():
        pytest.skip("seed page absent")
    text = " ".join(SEED_TEXT.read_text(encoding="utf-8").split())
    for r in requirements.response_checks():
        # A seed sentence may join several responses ("200 Task was ... 404 Task not found. ...").
        pieces = re.split(r"\b(?:200|404|409|500)\b", r.seed.removeprefix("Responses:"))
        for piece in (p.strip().rstrip(".").strip() for p in pieces):
            if piece:
                assert piece in text, (r.id, piece)


def test_registering_an_id_twice_is_refused() -> None:
    def other(ctx: CheckContext, exchange: Exchange) -> None:
        return None

    with pytest.raises(ValueError, match="registered twice"):
        requirements.register("SCH-STATUS", severity=Severity.MUST, profile=Profile.SCHEMA,
                               kind=Kind.RESPONSE, title="t", seed="s")(other)


# -- the Recorder ----------------------------------------------------------------------------------------

SCHEMA_IDS = {r.id for r in requirements.catalogue() if r.profile is Profile.SCHEMA}


def _results(recorder: Recorder, selected: set[str] | None = None) -> dict[str, Any]:
    return {r.requirement.id: r for r in recorder.results(selected if selected is not None else SCHEMA_IDS)}


def test_outcomes() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR))
    recorder.check(make_exchange(204, b""))
    results = _results(recorder)
    assert results["SCH-STATUS"].outcome is Outcome.FAIL
    assert (results["SCH-STATUS"].evaluations, results["SCH-STATUS"].failures) == (2, 1)
    assert results["SCH-ERROR-BODY"].outcome is Outcome.PASS
    # No 200 was observed: not passed, not failed.
    assert results["SCH-200-EMPTY"].outcome is Outcome.NOT_RUN
    assert "no response this requirement applies to" in results["SCH-200-EMPTY"].reason
    # When the budget ran out, the reason says so instead.
    recorder.budget_exhausted = lambda: True
    assert "request budget exhausted" in _results(recorder)["SCH-200-EMPTY"].reason
    for r in recorder.results(selected=set()):
        assert r.outcome is Outcome.SKIPPED


def test_not_run_reason_and_evaluation_wins() -> None:
    recorder = Recorder()
    recorder.not_run("SCH-200-EMPTY", "no IN_PROGRESS task was handed over")
    recorder.not_run("SCH-200-EMPTY", "a later reason")
    assert _results(recorder)["SCH-200-EMPTY"].reason == "no IN_PROGRESS task was handed over"
    recorder.check(make_exchange(200, b""))
    assert _results(recorder)["SCH-200-EMPTY"].outcome is Outcome.PASS


def test_record_for_a_requirement() -> None:
    recorder = Recorder()
    assert recorder.record("SCH-STATUS") is None
    finding = recorder.record("SCH-STATUS", [Violation("boom")], summary="custom summary")
    assert finding is not None and finding.level is Level.FAIL and finding.summary == "custom summary"
    assert _results(recorder)["SCH-STATUS"].outcome is Outcome.FAIL


def test_examples_are_bounded_but_failures_counted() -> None:
    recorder = Recorder()
    for status in range(201, 231):
        recorder.check(make_exchange(status, b""))
    recorder.check(make_exchange(201, b""))  # a repeat
    result = _results(recorder)["SCH-STATUS"]
    assert result.failures == 31
    assert len(result.findings) == EXAMPLES_PER_REQUIREMENT
    assert len({f.summary for f in result.findings}) == EXAMPLES_PER_REQUIREMENT
    assert all(f.exchange is not None for f in result.findings)


def test_repeated_violation_kept_once() -> None:
    recorder = Recorder()
    for _ in range(3):
        recorder.check(make_exchange(204, b""))
    assert len(_results(recorder)["SCH-STATUS"].findings) == 1


def test_summary_counts_more_violations() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, {"message": 7, "errorCode": 8}))
    [finding] = _results(recorder)["SCH-ERROR-BODY"].findings
    assert finding.summary == "/errorCode: 8 is not of type 'string' (and 1 more)"


def test_may_never_fails() -> None:
    recorder = Recorder()
    for i in range(INFO_NOTES_PER_REQUIREMENT + 10):
        recorder.check(make_exchange(404, {f"extra{i}": i}))
        recorder.record("SCH-EXTENSIONS", [Violation(f"note {i}")])
    result = _results(recorder)["SCH-EXTENSIONS"]
    assert result.outcome is Outcome.PASS and result.failures == 0
    assert len(result.findings) == INFO_NOTES_PER_REQUIREMENT
    assert recorder.failures_for(["SCH-EXTENSIONS"]) == []


def test_failures_for_only_must() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR, content_type="text/plain"))
    assert recorder.failures_for(["SCH-ERROR-MEDIA"]) == []
    recorder.check(make_exchange(204, b""))
    [finding] = recorder.failures_for(["SCH-STATUS", "SCH-ERROR-MEDIA"])
    assert finding.requirement_id == "SCH-STATUS"


# -- RunResult: the verdict --------------------------------------------------------------------------

def run_result(recorder: Recorder, selected: set[str] | None = None, **flags: bool) -> RunResult:
    return RunResult(
        suite_version="0", fragment_version="1", fragment_sha256="x", target_url="http://127.0.0.1:1",
        embedded_target=True, profile="schema", seed=1, max_examples=1, started_at="", finished_at="",
        duration_seconds=0.0, requests_sent=0, exchanges_checked=recorder.exchanges,
        results=tuple(recorder.results(selected if selected is not None else SCHEMA_IDS)), **flags,
    )


def test_clean_run_is_conformant() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR))
    result = run_result(recorder)
    assert result.conformant and result.verdict == "CONFORMANT"
    assert result.count(Outcome.PASS) >= 5


def test_must_failure_is_not_conformant() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR))
    recorder.check(make_exchange(404, {"message": 7}))
    result = run_result(recorder)
    assert not result.conformant and result.verdict == "NOT CONFORMANT"
    assert [r.requirement.id for r in result.failed_must] == ["SCH-ERROR-BODY"]


def test_should_failure_warns_unless_strict() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR, content_type="text/plain"))
    assert [r.requirement.id for r in run_result(recorder).warnings] == ["SCH-ERROR-MEDIA"]
    assert run_result(recorder).conformant
    assert not run_result(recorder, strict=True).conformant


def test_certify_requires_every_must_passed() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR))
    # SCH-200-EMPTY saw no 200: not proven.
    assert run_result(recorder).conformant
    assert not run_result(recorder, certify=True).conformant
    assert "SCH-200-EMPTY" in [r.requirement.id for r in run_result(recorder, certify=True).unproven_must]


def test_certify_with_every_must_passed_is_conformant() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR))
    recorder.check(make_exchange(200, b""))
    must = {r.id for r in requirements.catalogue() if r.severity is Severity.MUST and r.kind is Kind.RESPONSE}
    for requirement in requirements.scenario_requirements():
        recorder.record(requirement.id)
    selected = must | {r.id for r in requirements.scenario_requirements()} | SCHEMA_IDS
    assert run_result(recorder, selected, certify=True).conformant


def test_nothing_exercised_is_not_conformant() -> None:
    recorder = Recorder()
    result = run_result(recorder)
    assert not result.exercised and not result.conformant
    assert result.failed_must == []
    # Only a MAY requirement evaluated still proves nothing.
    recorder.record("SCH-EXTENSIONS")
    assert not run_result(recorder).conformant


# -- edge cases of the checks' rules ---------------------------------------------------------------------

def edited_context(edit: Any) -> CheckContext:
    """A context over a copy of the fragment changed by `edit(document)`: the rules read the fragment."""
    fragment = load_fragment()
    document = copy.deepcopy(fragment.document)
    edit(document)
    return CheckContext(fragment=Fragment(path=fragment.path, raw_bytes=fragment.raw_bytes, document=document))


def test_a_long_violation_message_is_cut_to_240_characters() -> None:
    # jsonschema quotes the offending instance: a hostile 10 kB string must not become a 10 kB finding.
    [long] = messages(run("SCH-ERROR-BODY", make_exchange(404, {"arguments": "x" * 10_000})))
    assert len(long) == len("/arguments: ") + 240
    assert long.startswith("/arguments: 'xxx") and long.endswith("x…")
    # A message that fits is kept whole.
    [short] = messages(run("SCH-ERROR-BODY", make_exchange(404, {"arguments": "x" * 100})))
    assert short == f"/arguments: '{'x' * 100}' is not of type 'array'"


@pytest.mark.parametrize(("status", "redirect"), [(300, True), (308, True), (399, True), (400, False), (201, False)])
def test_only_a_3xx_is_reported_as_a_redirect(status: int, redirect: bool) -> None:
    answered = make_exchange(status, b"", headers={"Location": "http://127.0.0.2/elsewhere"})
    [violation] = messages(run("SCH-STATUS", answered))
    assert ("(redirect to http://127.0.0.2/elsewhere, not followed)" in violation) is redirect


def test_a_redirect_without_location_says_nowhere() -> None:
    [violation] = messages(run("SCH-STATUS", make_exchange(302, b"")))
    assert "(redirect to nowhere, not followed)" in violation


def test_200_empty_judges_only_documented_successes_without_a_body() -> None:
    def edit(document: dict[str, Any]) -> None:
        responses = document["paths"]["/v1/tasks/{id}"]["delete"]["responses"]
        responses["300"] = {"description": "Multiple choices"}  # no body, but not a success
        del responses["409"]["content"]  # no body, not a success either
        responses["201"] = {"description": "Created", "content": copy.deepcopy(responses["404"]["content"])}

    ctx = edited_context(edit)
    for status in (300, 409):
        assert run("SCH-200-EMPTY", make_exchange(status, b"{}"), ctx) is None
    # A success the fragment documents a body for is not this check's to judge.
    assert run("SCH-200-EMPTY", make_exchange(201, VALID_ERROR), ctx) is None
    assert run("SCH-200-EMPTY", make_exchange(200, b"{}"), ctx) == [
        Violation("200 carries a 2-byte body (application/json); the fragment documents no body for it")
    ]


def test_200_empty_names_a_missing_content_type_and_a_truncated_size() -> None:
    answered = make_exchange(200, b"x" * 64, content_type=None, truncated=True)
    assert messages(run("SCH-200-EMPTY", answered)) == [
        "200 carries a 64+-byte body (no Content-Type); the fragment documents no body for it"
    ]


def test_error_media_names_a_missing_content_type() -> None:
    assert messages(run("SCH-ERROR-MEDIA", make_exchange(404, VALID_ERROR, content_type=None))) == [
        "404 Error body is labelled 'no Content-Type', not JSON"
    ]


def test_a_body_that_is_not_json_is_never_a_valid_error_even_when_error_accepts_anything() -> None:
    # A --spec whose Error schema is {} accepts any JSON value, null included; a body that does not
    # decode has no value at all, so the 5xx is still "without a valid Error body".
    def edit(document: dict[str, Any]) -> None:
        document["components"]["schemas"]["Error"] = {}

    ctx = edited_context(edit)
    [html] = messages(run("SRV-NO-5XX", make_exchange(500, b"<html/>", content_type="text/html"), ctx))
    assert html.endswith("without a valid Error body")
    [anything] = messages(run("SRV-NO-5XX", make_exchange(500, b"null"), ctx))
    assert anything.endswith("with a valid Error body")

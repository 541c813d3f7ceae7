"""The behaviour profile, compare's diff and classes, serve --like's mapping and the HAR recording: unit level."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conformance.cli import main
from conformance.engine.behaviour import BehaviourObserver, nesting_depth, percentile
from conformance.model import Exchange, RecordedRequest, RecordedResponse
from conformance.reference.like import like
from conformance.report.compare import BREAKS, NOT_COMPARED, TOLERATED, ProfileError, check_profile, diff_profiles

UUID = "0b8a5a1e-2f6c-4d7e-9a1b-3c4d5e6f7a8b"
IN_PROGRESS_ID = "11111111-2222-4333-8444-555555555555"
DONE_ID = "99999999-2222-4333-8444-555555555555"
SECRET = "Tok/7+q=Z&k%ü s3cr3t-4417-abcdef"


def klass(statuses: dict[str, int], media: str = "application/json", body: str = "json-object",
          codes: tuple[str, ...] = ("TA_TASK_NOT_FOUND",), messages: tuple[str, ...] = ("Task {id} not found",),
          ) -> dict[str, Any]:
    n = sum(statuses.values())
    return {"requests": n, "statuses": statuses, "media_types": {media: n}, "bodies": {body: n},
            "error_codes": dict.fromkeys(codes, n), "error_types": {}, "messages": list(messages)}


def profile(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "profile_version": 1,
        "classes": {
            "unknown uuid": klass({"404": 5}),
            "url-hostile: dot segment": klass({"404": 2}),
            "task IN_PROGRESS": klass({"200": 3}, media="none", body="none", codes=(), messages=()),
            "task SUCCESSFUL": klass({"409": 1}, codes=("TA_TASK_CAN_NOT_BE_CANCELLED",), messages=("No",)),
        },
        "error": {"fields": ["arguments", "errorCode", "message"], "max_nesting_depth": 1},
        "cancel": {"mode": "synchronous", "settle_seconds": None, "repeat_while_pending": []},
        "not_cancellable": {"listed": 0},
        "backpressure": {"retries": 0},
        "token": {"relogins": 0, "lifetime_seconds": None},
        "latency_ms": {"count": 10, "p50": 20.0, "p90": 30.0, "p99": 40.0, "max": 50.0},
        "run": {"suite_version": "0", "target": "http://x", "embedded": True, "profile": "full", "seed": 3,
                "verdict": "CONFORMANT"},
    }
    for path, value in changes.items():
        where = document
        *parents, last = path.split("__")
        for key in parents:
            where = where[key]
        where[last] = value
    return document


def kinds(base: dict[str, Any], cand: dict[str, Any]) -> dict[str, str]:
    return {d.behaviour: d.kind for d in diff_profiles(base, cand)}


# -- diff and classes --------------------------------------------------------------------------------
def test_a_profile_against_itself_differs_in_nothing() -> None:
    assert diff_profiles(profile(), copy.deepcopy(profile())) == []


def test_a_servlet_page_for_a_hostile_id_would_break_a_client() -> None:
    page = klass({"400": 2}, media="text/html;charset=utf-8", body="other", codes=(), messages=())
    cand = profile()
    cand["classes"]["url-hostile: dot segment"] = page
    assert kinds(profile(), cand) == {"url-hostile: dot segment: status, media type, Error body": BREAKS}


def test_cancel_mode_would_break_a_client_settle_time_is_tolerated() -> None:
    cand = profile(cancel={"mode": "asynchronous", "settle_seconds": 1.5, "repeat_while_pending": []})
    assert kinds(profile(), cand) == {"cancel mode": BREAKS}
    slower = profile(cancel={"mode": "asynchronous", "settle_seconds": 4.0, "repeat_while_pending": []})
    assert kinds(cand, profile(cancel={"mode": "asynchronous", "settle_seconds": 2.9,
                                       "repeat_while_pending": []})) == {}  # within one polling interval
    assert kinds(cand, slower) == {"settle time (s)": TOLERATED}
    # Polling noise is not a difference.
    assert kinds(cand, profile(cancel={"mode": "asynchronous", "settle_seconds": 1.8,
                                       "repeat_while_pending": []})) == {}


def test_repeat_cancel_while_pending_is_a_state_transition() -> None:
    base = profile(cancel={"mode": "asynchronous", "settle_seconds": 1.5, "repeat_while_pending": [200]})
    cand = profile(cancel={"mode": "asynchronous", "settle_seconds": 1.5, "repeat_while_pending": [409]})
    assert kinds(base, cand) == {"repeat cancel while pending": BREAKS}


def test_error_code_breaks_wording_type_fields_latency_are_tolerated() -> None:
    cand = profile()
    cand["classes"]["unknown uuid"] = klass({"404": 5}, codes=("TASK_NOT_FOUND",))
    assert kinds(profile(), cand) == {"unknown uuid: errorCode": BREAKS}
    cand["classes"]["unknown uuid"] = klass({"404": 5}, messages=("Not there: {id}",))
    cand["classes"]["unknown uuid"]["error_types"] = {"ERROR": 5}
    cand["error"] = {"fields": ["errorCode", "message"], "max_nesting_depth": 3}
    cand["latency_ms"] = {"count": 10, "p50": 90.0, "p90": 30.0, "p99": 41.0, "max": 50.0}
    assert kinds(profile(), cand) == {
        "unknown uuid: errorType, message wording": TOLERATED, "optional Error fields filled": TOLERATED,
        "Error nesting depth": TOLERATED, "latency p50 (ms)": TOLERATED}


def test_media_type_parameters_are_tolerated_another_media_type_is_not() -> None:
    cand = profile()
    cand["classes"]["unknown uuid"] = klass({"404": 5}, media="application/json;charset=utf-8")
    assert kinds(profile(), cand) == {"unknown uuid: media type parameters": TOLERATED}
    cand["classes"]["unknown uuid"] = klass({"404": 5}, media="application/vnd.vmware.error+json")
    assert kinds(profile(), cand) == {"unknown uuid: media type": BREAKS}


def test_a_missing_error_body_or_a_body_on_success_would_break_a_client() -> None:
    cand = profile()
    cand["classes"]["unknown uuid"] = klass({"404": 5}, media="none", body="none", codes=(), messages=())
    assert kinds(profile(), cand) == {"unknown uuid: media type, Error body": BREAKS}
    cand = profile()
    cand["classes"]["task IN_PROGRESS"] = klass({"200": 3}, codes=(), messages=())
    assert kinds(profile(), cand) == {"task IN_PROGRESS: media type, body": BREAKS}


def test_a_class_seen_on_one_side_only_is_not_compared() -> None:
    cand = profile()
    cand["classes"]["task IN_PROGRESS, isCancellable false"] = klass({"409": 1})
    del cand["classes"]["url-hostile: dot segment"]
    assert kinds(profile(), cand) == {"task IN_PROGRESS, isCancellable false": NOT_COMPARED,
                                      "url-hostile: dot segment": NOT_COMPARED}
    assert kinds(profile(), profile(cancel={"mode": None, "settle_seconds": None,
                                            "repeat_while_pending": []})) == {"cancel mode": NOT_COMPARED}


@pytest.mark.parametrize("document", [[], {"profile_version": 2}, {"profile_version": 1, "classes": []},
                                      {**profile(), "classes": {"x": {"statuses": []}}}])
def test_what_is_not_a_profile_is_refused(document: Any) -> None:
    with pytest.raises(ProfileError):
        check_profile(document, "p.json")


# -- the command, on files -----------------------------------------------------------------------------
def _write(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    return int(ended.value.code or 0)


def test_compare_exits_0_when_nothing_breaks_1_when_something_does_2_on_a_bad_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _write(tmp_path, "base.json", profile())
    tolerated = profile(latency_ms={"count": 1, "p50": 500.0, "p99": 900.0})
    assert _exit(["compare", str(base), str(_write(tmp_path, "t.json", tolerated))]) == 0
    assert "COMPATIBLE" in capsys.readouterr().out
    broken = profile(cancel={"mode": "asynchronous", "settle_seconds": 1.5, "repeat_while_pending": []})
    assert _exit(["compare", str(base), str(_write(tmp_path, "b.json", broken)), "--format", "json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["breaks_a_client"] and shown["differences"][0]["behaviour"] == "cancel mode"
    assert _exit(["compare", str(base), str(_write(tmp_path, "bad.json", {"x": 1}))]) == 2
    assert _exit(["compare", str(base)]) == 2  # no candidate, no --base-url
    odd = profile(error={"fields": 5, "max_nesting_depth": "deep"}, latency_ms={"count": 1, "p50": "fast"})
    odd["classes"]["unknown uuid"]["messages"] = 7
    assert _exit(["compare", str(base), str(_write(tmp_path, "odd.json", odd))]) == 2
    assert "sddc-conformance: error:" in capsys.readouterr().err


def test_compare_output_never_carries_control_characters_or_markup(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    hostile = profile()
    hostile["classes"]["unknown uuid"] = klass({"404": 5}, codes=("\x1b[2J<script>",))
    base = _write(tmp_path, "base.json", profile())
    for fmt in ("console", "markdown", "html"):
        assert _exit(["compare", str(base), str(_write(tmp_path, "h.json", hostile)), "--format", fmt]) == 1
        out = capsys.readouterr().out
        assert "\x1b" not in out
        assert "<script>" not in out or fmt == "console"


# -- the observer ---------------------------------------------------------------------------------------
def _exchange(method: str, task_id: str, status: int, body: Any = None, *, purpose: str = "x",
              content_type: str = "application/json", headers: dict[str, str] | None = None) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return Exchange(
        RecordedRequest(method, f"http://h/v1/tasks/{quote(task_id, safe='')}", headers or {}),
        RecordedResponse(status, "", {"Content-Type": content_type} if raw else {}, raw, 0.01),
        purpose=purpose, task_id=task_id)


def _error(code: str, message: str = "m", **more: Any) -> dict[str, Any]:
    return {"errorCode": code, "message": message, "referenceToken": "REF-123", **more}


def test_the_observer_classes_cancels_by_id_class_and_task_status() -> None:
    now = iter(range(100))
    seen = BehaviourObserver({"IN_PROGRESS": [IN_PROGRESS_ID, "nc"], "SUCCESSFUL": [DONE_ID]},
                             clock=lambda: float(next(now)))
    seen.observe(_exchange("GET", "", 200, {"elements": [{"id": "nc", "status": "IN_PROGRESS",
                                                          "isCancellable": False}]}))
    seen.observe(_exchange("DELETE", "nc", 409, _error("NOPE")))
    seen.observe(_exchange("DELETE", IN_PROGRESS_ID, 200))
    seen.observe(_exchange("DELETE", IN_PROGRESS_ID, 409, _error("NOPE")))  # not read since
    seen.observe(_exchange("GET", IN_PROGRESS_ID, 200, {"id": IN_PROGRESS_ID, "status": "IN_PROGRESS"}))
    seen.observe(_exchange("DELETE", IN_PROGRESS_ID, 200))  # read pending since
    seen.observe(_exchange("DELETE", DONE_ID, 409, _error("NOPE")))
    seen.observe(_exchange("DELETE", UUID, 404, _error("NF", f"Task {UUID} gone", nestedErrors=[_error("X")])))
    seen.observe(_exchange("DELETE", "..", 400, b"<html>Bad Request</html>", content_type="text/html"))
    seen.observe(_exchange("DELETE", DONE_ID[:-1], 404, _error("NF"), purpose="generated id (near-miss (suffix))"))
    seen.observe(_exchange("DELETE", "abc", 404, _error("NF")))
    seen.observe(_exchange("DELETE", UUID[::-1], 401, _error("AUTH"), purpose="AUTH-REQUIRED: cancel with no token"))
    seen.observe(_exchange("DELETE", DONE_ID, 409, _error("NOPE"), purpose="BEH-RACE: concurrent cancel 2/4"))
    document = seen.profile(cancel_mode={"mode": "asynchronous", "settle_seconds": 1.5})
    classes = {name: set(entry["statuses"]) for name, entry in document["classes"].items()}
    assert classes == {
        "task IN_PROGRESS, isCancellable false": {"409"}, "task IN_PROGRESS": {"200"},
        "repeat cancel, not read since": {"409"}, "repeat cancel while pending": {"200"},
        "task SUCCESSFUL": {"409"}, "unknown uuid": {"404"}, "url-hostile: dot segment": {"400"},
        "near-miss": {"404"}, "unknown id": {"404"}, "auth: no token": {"401"}, "racing cancels": {"409"}}
    assert document["classes"]["unknown uuid"]["messages"] == ["Task {id} gone"]
    assert document["classes"]["url-hostile: dot segment"]["media_types"] == {"text/html": 1}
    assert document["cancel"] == {"mode": "asynchronous", "settle_seconds": 1.5, "repeat_while_pending": [200],
                                  "pending_seconds": 1.0}
    assert document["not_cancellable"] == {"listed": 1}
    assert document["error"] == {"fields": ["errorCode", "message", "nestedErrors", "referenceToken"],
                                 "max_nesting_depth": 2}
    text = json.dumps(document)
    assert "REF-123" not in text and UUID not in text and IN_PROGRESS_ID not in text


def test_depth_and_percentiles() -> None:
    assert nesting_depth({"nestedErrors": [{"nestedErrors": [{}]}, {}]}) == 3
    deep: dict[str, Any] = {}
    for _ in range(500):
        deep = {"nestedErrors": [deep]}
    assert nesting_depth(deep) == 64
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0


def test_the_recording_redacts_every_form_of_the_secret() -> None:
    seen = BehaviourObserver(secrets=lambda: (SECRET, None), record=True)
    echoed = {"raw": SECRET, "encoded": quote(SECRET, safe=""),
              "b64": base64.b64encode(f"u:{SECRET}".encode()).decode()}
    seen.observe(_exchange("GET", f"x{SECRET}", 200, echoed, headers={"Authorization": f"Bearer {SECRET}"}))
    seen.observe(_exchange("GET", "x", 200, b"\xff" + SECRET.encode() + b"\xfe", content_type="text/plain"))
    kept, binary = seen.recording
    assert binary.exchange.response is not None
    assert binary.exchange.response.body == b"\xff[redacted]\xfe"
    blob = json.dumps([kept.exchange.to_json(), kept.exchange.request.url])
    assert SECRET not in blob and quote(SECRET, safe="") not in blob
    assert base64.b64encode(SECRET.encode()).decode()[:-4] not in blob


# -- serve --like ----------------------------------------------------------------------------------------
def test_like_takes_on_the_recorded_behaviour() -> None:
    recorded = profile(cancel={"mode": "asynchronous", "settle_seconds": 2.4, "repeat_while_pending": [],
                               "pending_seconds": 1.5},
                       not_cancellable={"listed": 2}, token={"relogins": 1, "lifetime_seconds": 60.0})
    recorded["classes"]["url-hostile: dot segment"] = klass({"400": 2}, media="text/html;charset=utf-8",
                                                            body="other", codes=(), messages=())
    recorded["classes"]["unknown uuid"] = klass({"404": 5}, media="application/json;charset=utf-8",
                                                codes=("TASK_NOT_FOUND",))
    recorded["classes"]["racing cancels"] = klass({"200": 1, "409": 3})
    got = like(recorded)
    assert got.settings == {
        "defects": frozenset({"async-cancel-repeat-409", "servlet-url-hygiene", "non-cancellable-in-progress",
                              "charset-content-type"}),
        "settle_seconds": 1.5, "not_found_code": "TASK_NOT_FOUND",
        "not_cancellable_code": "TA_TASK_CAN_NOT_BE_CANCELLED", "token_ttl": 60.0}
    assert got.notes == ()
    recorded["classes"]["racing cancels"] = klass({"200": 4})
    recorded["classes"]["unknown uuid"] = klass({"400": 5}, codes=("bad code\x1b",))
    got = like(recorded)
    assert "async-cancel-repeat-200" in got.settings["defects"] and "not_found_code" not in got.settings
    assert got.notes == ("unknown ids answered 400; the reference server answers 404",)
    assert like(profile()).settings == {"defects": frozenset(), "not_found_code": "TA_TASK_NOT_FOUND",
                                        "not_cancellable_code": "TA_TASK_CAN_NOT_BE_CANCELLED"}


def test_like_maps_media_types_fields_and_says_what_refused_cancels_it_cannot_take_on() -> None:
    recorded = profile(error={"fields": ["errorCode", "message"], "max_nesting_depth": 1})
    recorded["classes"]["unknown uuid"] = klass({"404": 5}, media="application/vnd.vmware.error+json")
    recorded["classes"]["task SUCCESSFUL"] = klass({"400": 1}, codes=("BAD",))
    got = like(recorded)
    assert got.settings["defects"] == frozenset({"vendor-error-json", "minimal-error"})
    assert got.settings["not_cancellable_code"] == "BAD"
    assert got.notes == ("finished tasks' cancels answered 400; the reference server answers 409",)


# -- the HAR recording ------------------------------------------------------------------------------------
def test_a_recorded_run_writes_a_har_that_opens_in_haralyzer_and_is_pinned(defective_run: Any,
                                                                         tmp_path: Path) -> None:
    import dataclasses

    from haralyzer import HarParser

    from conformance.report import write_reports
    from conformance.report.bundle import verify

    seen = BehaviourObserver(secrets=lambda: (SECRET,), record=True)
    for exchange in [f.exchange for r in defective_run.results for f in r.findings if f.exchange]:
        seen.observe(exchange)
    # A body that is not UTF-8 goes in as base64, as HAR says.
    seen.observe(_exchange("DELETE", "odd", 404, b"\xff\xfe", content_type="text/plain"))
    seen.observe(_exchange("GET", "odd", 200, {"echo": SECRET}, headers={"Authorization": f"Bearer {SECRET}"}))
    run = dataclasses.replace(defective_run, recording=tuple(seen.recording))
    write_reports(run, tmp_path)
    assert verify(tmp_path).intact
    assert "recording.har" in json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["artifacts"]
    path = tmp_path / "recording.har"
    assert SECRET not in path.read_text(encoding="utf-8")
    parser = HarParser(json.loads(path.read_text(encoding="utf-8")))
    entries = [entry for page in parser.pages for entry in page.entries] or parser.har_data["entries"]
    assert len(entries) == len(run.recording) > 5
    assert parser.har_data["version"] == "1.2"
    assert [e["response"]["content"].get("encoding") for e in parser.har_data["entries"]
            if e["request"]["method"] == "DELETE" and e["request"]["url"].endswith("/odd")] == ["base64"]
    assert {e["request"]["method"] for e in parser.har_data["entries"]} >= {"DELETE", "GET"}
    assert all(e["request"]["headers"] == [] or all(
        h["value"] == "Bearer [redacted]" for h in e["request"]["headers"] if h["name"] == "Authorization")
        for e in parser.har_data["entries"])


def test_a_live_candidate_that_cannot_be_reached_is_no_verdict(tmp_path: Path) -> None:
    from tests.conftest import free_port

    base = _write(tmp_path, "base.json", profile())
    assert _exit(["compare", str(base), "--base-url", f"http://127.0.0.1:{free_port()}", "--token", "t",
                  "--report-dir", str(tmp_path / "live")]) == 3
    assert _exit(["compare", str(base), str(base), "--base-url", "http://127.0.0.1:1"]) == 2


def test_serve_like_says_what_it_takes_on_and_refuses_what_is_not_a_profile(tmp_path: Path) -> None:
    import subprocess
    import sys

    cli = [sys.executable, "-c", "from conformance.cli import main; main()", "serve", "--port", "0"]
    bad = subprocess.run([*cli, "--like", str(_write(tmp_path, "bad.json", [1]))], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "not a profile.json" in bad.stderr
    recorded = profile(cancel={"mode": "asynchronous", "settle_seconds": 2.0, "repeat_while_pending": [409],
                               "pending_seconds": 1.5})
    recorded["classes"]["unknown uuid"] = klass({"400": 5})
    server = subprocess.Popen([*cli, "--like", str(_write(tmp_path, "p.json", recorded)), "--settle-seconds", "3",
                               "--state-file", str(tmp_path / "state.json")], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        first, second = server.stdout.readline(), server.stdout.readline()
    finally:
        server.kill()
        server.wait(timeout=30)
    # The command line's --settle-seconds wins over the recording's.
    assert first.startswith("like ") and "async-cancel-repeat-409" in first and "settle_seconds" not in first
    assert second.strip() == "like: not reproduced: unknown ids answered 400; the reference server answers 404"

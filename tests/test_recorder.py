"""The Recorder's bookkeeping: exchanges counted, a revoked token, remarks, repeats, reasons in words."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import make_exchange

from conformance.engine.recorder import Recorder
from conformance.errors import AuthenticationFailed
from conformance.model import Level, Outcome, Violation
from conformance.outcome import RequirementResult

VALID_ERROR = {"errorCode": "TA_TASK_NOT_FOUND", "message": "Task with ID x not found"}


def result(recorder: Recorder, requirement_id: str) -> RequirementResult:
    return next(r for r in recorder.results() if r.requirement.id == requirement_id)


def test_every_checked_exchange_is_counted_once() -> None:
    recorder = Recorder()
    assert recorder.exchanges == 0
    recorder.check(make_exchange(404, VALID_ERROR))
    recorder.check(make_exchange(None))
    recorder.check(make_exchange(204, b""))
    assert recorder.exchanges == 3
    # Recording a scenario's evaluation is not a checked exchange.
    recorder.record("SCH-STATUS")
    assert recorder.exchanges == 3


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_mid_run_is_no_verdict_not_an_undocumented_status(status: int) -> None:
    recorder = Recorder()
    asked: list[bool] = []

    def accepted() -> bool:
        asked.append(True)
        return False

    recorder.token_accepted = accepted
    refused = dataclasses.replace(make_exchange(status, b""), purpose=None)
    with pytest.raises(AuthenticationFailed) as raised:
        recorder.check(refused)
    assert str(raised.value) == (
        f"the target refused the suite's token in the middle of the run ({status} to DELETE a request): "
        "the token expired or was revoked; get a fresh one and run again"
    )
    assert asked == [True]
    assert recorder.exchanges == 0 and result(recorder, "SCH-STATUS").evaluations == 0
    # The message names what the refused request was for when the exchange says.
    with pytest.raises(AuthenticationFailed, match=rf"\({status} to DELETE an unknown id\)"):
        recorder.check(dataclasses.replace(refused, purpose="an unknown id"))


@pytest.mark.parametrize("status", [400, 402, 404, 407, 500])
def test_other_statuses_never_ask_about_the_token(status: int) -> None:
    recorder = Recorder()

    def accepted() -> bool:
        raise AssertionError("asked about the token for a status that says nothing about it")

    recorder.token_accepted = accepted
    recorder.check(make_exchange(status, VALID_ERROR))
    assert recorder.exchanges == 1


def test_a_401_while_the_token_still_works_is_judged_like_any_status() -> None:
    recorder = Recorder()
    recorder.token_accepted = lambda: True
    [finding] = recorder.check(make_exchange(401, b""))
    assert finding.requirement_id == "SCH-STATUS" and "undocumented status 401" in finding.summary


def test_unexercised_reason_until_the_first_evaluation() -> None:
    recorder = Recorder()
    assert recorder.unexercised_reason("SCH-200-EMPTY") is None
    recorder.not_run("SCH-200-EMPTY", "no IN_PROGRESS task was handed over")
    assert recorder.unexercised_reason("SCH-200-EMPTY") == "no IN_PROGRESS task was handed over"
    recorder.check(make_exchange(200, b""))
    assert recorder.unexercised_reason("SCH-200-EMPTY") is None


def test_remarks_follow_the_reason_once_each() -> None:
    recorder = Recorder()
    recorder.remark("SCH-STATUS", "judged only on 404s")
    recorder.remark("SCH-STATUS", "judged only on 404s")
    recorder.remark("SCH-STATUS", "no 409 seen")
    recorder.check(make_exchange(404, VALID_ERROR))
    assert result(recorder, "SCH-STATUS").reason == "1 evaluation; judged only on 404s; no 409 seen"
    recorder.check(make_exchange(204, b""))
    assert result(recorder, "SCH-STATUS").reason == "1 of 2 evaluations failed; judged only on 404s; no 409 seen"


def test_reasons_count_evaluations_in_words() -> None:
    recorder = Recorder()
    recorder.check(make_exchange(404, VALID_ERROR))
    assert result(recorder, "SCH-ERROR-BODY").reason == "1 evaluation"
    recorder.check(make_exchange(409, VALID_ERROR))
    assert result(recorder, "SCH-ERROR-BODY").reason == "2 evaluations"
    recorder.check(make_exchange(404, {"message": 7}))
    assert result(recorder, "SCH-ERROR-BODY").reason == "1 of 3 evaluations failed"


def test_a_repeated_failure_still_fails_and_a_repeated_note_still_informs() -> None:
    recorder = Recorder()
    first = recorder.record("SCH-STATUS", [Violation("boom")])
    again = recorder.record("SCH-STATUS", [Violation("boom")])
    assert first is not None and again is not None
    assert (first.level, again.level) == (Level.FAIL, Level.FAIL)
    # A repeat is counted, not kept: no second example, no summary.
    assert again.summary == "" and again.exchange is None
    assert len(result(recorder, "SCH-STATUS").findings) == 1 and result(recorder, "SCH-STATUS").failures == 2
    note = recorder.record("SCH-EXTENSIONS", [Violation("field not in the seed's Error", "/label")])
    note_again = recorder.record("SCH-EXTENSIONS", [Violation("field not in the seed's Error", "/label")])
    assert note is not None and note_again is not None
    assert (note.level, note_again.level) == (Level.INFO, Level.INFO)
    assert result(recorder, "SCH-EXTENSIONS").outcome is Outcome.PASS


def test_check_returns_a_repeated_failure_of_each_exchange() -> None:
    # Replay reads what check returns to decide whether a finding still fails: a failure already
    # seen (same violations) must still be returned for this exchange.
    recorder = Recorder()
    for _ in range(2):
        failed = recorder.check(make_exchange(204, b""))
        assert [f.requirement_id for f in failed] == ["SCH-STATUS"]
    # Information never counts as a failure of the exchange.
    assert recorder.check(make_exchange(404, {**VALID_ERROR, "label": "x"})) == []

"""The deterministic id corpus and near-misses: every class once, no duplicates, no listed id."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from conftest import run_in_process

from conformance import identity
from conformance.engine.generation import GEN_DELIMS, SUB_DELIMS, corpus, corpus_for, near_misses
from conformance.engine.urls import URL_HOSTILE, url_class
from conformance.model import Outcome
from conformance.tasks import encode_id

REQUIRED_CLASSES = {
    "gen-delim alone", "gen-delim embedded", "sub-delim alone", "sub-delim embedded",
    "percent-escape: encoded slash", "percent-escape: encoded backslash", "percent-escape: encoded percent",
    "percent-escape: encoded period", "percent-escape: NUL", "percent-escape: CR/LF",
    "malformed escape as literal text", "malformed escape sent raw", "dot segment",
    "whitespace: space", "whitespace: tab", "unicode: combining mark", "unicode: right-to-left",
    "unicode: emoji", "unicode: noncharacter", "length", "uuid spelling: upper case",
    "uuid spelling: no hyphens", "uuid spelling: braces", "uuid spelling: urn",
}


def test_every_class_is_present() -> None:
    classes = {cls for cls, _ in corpus()}
    assert classes >= REQUIRED_CLASSES, REQUIRED_CLASSES - classes


def test_every_delimiter_alone_and_embedded() -> None:
    raws = {probe.raw for _, probe in corpus()}
    for ch in GEN_DELIMS + SUB_DELIMS:
        assert ch in raws and f"a{ch}b" in raws


def test_length_boundaries_count_encoded_bytes() -> None:
    lengths = {len(probe.encoded) for cls, probe in corpus() if cls == "length"}
    # The lengths docs/DESIGN.md "Id coverage" lists; only the last is over the well-formed bound.
    assert lengths == {1, 35, 36, 37, 255, 256, 1024, 2048, 4100}
    hostile = {len(p.encoded) for cls, p in corpus() if cls == "length" and url_class(p.raw, p.encoded) == URL_HOSTILE}
    assert hostile == {4100}


def test_no_id_twice_on_the_wire_and_deterministic() -> None:
    encoded = [probe.encoded for _, probe in corpus_for(set())]
    assert len(encoded) == len(set(encoded))
    # No class loses its ids to the dedupe: every corpus entry is its own id.
    assert len(encoded) == len(corpus())
    assert encoded == [probe.encoded for _, probe in corpus_for(set())]


def test_malformed_escapes_go_out_raw_and_are_url_hostile() -> None:
    raw_sent = [probe for cls, probe in corpus() if cls == "malformed escape sent raw"]
    assert {p.encoded for p in raw_sent} >= {"%C0%AF", "%E2%82"}
    assert all(url_class(p.raw, p.encoded) == URL_HOSTILE for p in raw_sent)


def test_listed_ids_are_left_out() -> None:
    listed = {"!", "a:b", ".", "a b", "%zz"}
    assert not {probe.raw for _, probe in corpus_for(listed)} & listed
    assert {probe.raw for _, probe in corpus_for(set())} & listed == listed


def test_near_misses_of_refusable_tasks_only() -> None:
    task = "0b9f5c3e-1d2a-4c7b-8e6f-5a4b3c2d1e0f"
    running = "1b9f5c3e-1d2a-4c7b-8e6f-5a4b3c2d1e0f"
    misses = near_misses([("SUCCESSFUL", task), ("IN_PROGRESS", running)], {task, running})
    kinds = Counter(m.kind for m in misses)
    assert set(kinds) == {f.name for f in identity.applicable("uuid")}
    assert all(m.task_id == task for m in misses)
    assert not {m.probe.raw for m in misses} & {task, running}
    assert [m.may_resolve for m in misses if m.kind == "uuid-hex-case"] == [True]
    assert [m.probe.raw for m in misses if m.may_resolve] == [task.upper()]


def test_near_misses_never_equal_a_listed_id() -> None:
    misses = near_misses([("FAILED", "abcdefgh")], {"abcdefgh", "abcdefg", "ABCDEFGH"})
    assert {m.probe.raw for m in misses}.isdisjoint({"abcdefgh", "abcdefg", "ABCDEFGH"})


def failed(result: Any) -> set[str]:
    return {r.requirement.id for r in result.results if r.outcome is Outcome.FAIL}


@pytest.mark.slow
def test_partial_match_ids_fails_exactly_beh_unknown_404() -> None:
    assert failed(run_in_process("partial-match-ids", max_examples=10)) == {"BEH-UNKNOWN-404"}


@pytest.mark.slow
def test_non_uuid_task_ids_variation_is_conformant_and_its_tasks_get_no_delete(reference_server: Any) -> None:
    from conformance.engine.runner import execute
    from conformance.engine.session import open_session
    from conformance.options import RunOptions

    with open_session(RunOptions(seed=1, max_examples=20, defects=("non-uuid-task-ids",))) as session:
        # Listed by GET /v1/tasks, never handed over: they must get no DELETE at all.
        hidden = session.pool.existing - {i for ids in session.pool.given.values() for i in ids}
        result = execute(session)
        log = session.provision.request_log
    assert failed(result) == set()
    assert hidden, "the listing shows tasks that were not handed over"
    deleted = {r.path.rsplit("/", 1)[-1] for r in log if r.method == "DELETE"}
    assert not deleted & {encode_id(i) for i in hidden}


@pytest.mark.slow
def test_the_run_reports_coverage_and_the_schema_suite_sends_no_id_twice() -> None:
    from conformance.engine.runner import execute
    from conformance.engine.session import open_session
    from conformance.options import Profile, RunOptions

    with open_session(RunOptions(seed=1, max_examples=20, profile=Profile.SCHEMA)) as session:
        result = execute(session)
        log = session.provision.request_log
    deletes = [r.path for r in log if r.method == "DELETE"]
    assert deletes and len(deletes) == len(set(deletes))
    coverage = result.coverage
    assert coverage["deletes"] == len(deletes) and coverage["distinct_ids"] == len(deletes)
    assert set(coverage["classes"]) >= REQUIRED_CLASSES
    assert result.to_json()["coverage"] == coverage


@pytest.mark.slow
def test_each_response_requirement_is_its_own_test_item(pytestconfig: Any) -> None:
    import subprocess
    import sys

    from conformance import requirements

    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "conformance.pytest_plugin", "--pyargs", "conformance.suite.test_schema"],
        capture_output=True, text=True, timeout=120, cwd=pytestconfig.rootpath, check=False,
    ).stdout
    for requirement in requirements.response_checks():
        assert f"test_response_requirement[{requirement.id}]" in listed, listed[-2000:]

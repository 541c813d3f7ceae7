"""Task ids handed over by the user: parsing, files, status spellings, and the safety rules of the pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.tasks import (
    STATUSES,
    TaskPool,
    TasksFileError,
    load_tasks_file,
    normalise_status,
    parse_task_option,
)


@pytest.mark.parametrize(
    ("spelling", "status"),
    [
        ("IN_PROGRESS", "IN_PROGRESS"),
        ("In Progress", "IN_PROGRESS"),
        ("IN PROGRESS", "IN_PROGRESS"),
        ("in_progress", "IN_PROGRESS"),
        ("in-progress", "IN_PROGRESS"),
        ("Cancelled", "CANCELLED"),
        ("CANCELLED", "CANCELLED"),
        ("Successful", "SUCCESSFUL"),
        ("Pending", "PENDING"),
        ("Failed", "FAILED"),
        ("completed_with_warning", "COMPLETED_WITH_WARNING"),
        ("Skipped", "SKIPPED"),
    ],
)
def test_normalise_status(spelling: str, status: str) -> None:
    assert normalise_status(spelling) == status


@pytest.mark.parametrize("value", ["CANCELED", "RUNNING", "", None, 3, ["IN_PROGRESS"]])
def test_normalise_status_unknown(value: object) -> None:
    assert normalise_status(value) is None


def test_every_status_is_its_own_spelling() -> None:
    assert [normalise_status(s) for s in STATUSES] == list(STATUSES)


def test_parse_task_option() -> None:
    assert parse_task_option("IN_PROGRESS=abc-1") == ("IN_PROGRESS", "abc-1")
    assert parse_task_option(" In Progress = abc ") == ("IN_PROGRESS", "abc")
    assert parse_task_option("FAILED=a=b") == ("FAILED", "a=b")


@pytest.mark.parametrize(("text", "message"), [
    ("IN_PROGRESS", "expected STATE=ID"),
    ("IN_PROGRESS=", "expected STATE=ID"),
    ("IN_PROGRESS=  ", "expected STATE=ID"),
    ("RUNNING=abc", "unknown status 'RUNNING'"),
])
def test_parse_task_option_errors(text: str, message: str) -> None:
    with pytest.raises(TasksFileError, match=message):
        parse_task_option(text)


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_load_plain_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, {"IN_PROGRESS": ["a", "b"], "FAILED": ["c"], "PENDING": []})
    assert load_tasks_file(path) == {"IN_PROGRESS": ["a", "b"], "FAILED": ["c"], "PENDING": []}


def test_load_state_file_wrapper(tmp_path: Path) -> None:
    document = {"base_url": "http://127.0.0.1:1", "username": "admin@local", "password": "p",
                "tasks": {"IN_PROGRESS": ["a"], "SUCCESSFUL": ["s"]}}
    assert load_tasks_file(_write(tmp_path, document)) == {"IN_PROGRESS": ["a"], "SUCCESSFUL": ["s"]}


def test_load_title_case_keys_merge(tmp_path: Path) -> None:
    path = _write(tmp_path, {"In Progress": ["a"], "IN_PROGRESS": ["b"], "Cancelled": ["c"]})
    assert load_tasks_file(path) == {"IN_PROGRESS": ["a", "b"], "CANCELLED": ["c"]}


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    ("[1, 2]", "expected an object"),
    ('{"tasks": [1]}', "unknown status 'tasks'"),
    ('{"RUNNING": ["a"]}', "unknown status 'RUNNING'"),
    ('{"FAILED": "a"}', "must be a list of non-empty id strings"),
    ('{"FAILED": [""]}', "must be a list of non-empty id strings"),
    ('{"FAILED": [1]}', "must be a list of non-empty id strings"),
])
def test_load_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TasksFileError, match=message):
        load_tasks_file(path)


def test_load_missing_and_binary(tmp_path: Path) -> None:
    with pytest.raises(TasksFileError, match="cannot read tasks file"):
        load_tasks_file(tmp_path / "absent.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TasksFileError, match="not JSON"):
        load_tasks_file(binary)


# -- the pool's safety rules ------------------------------------------------------------------------

def test_take_in_progress_only_given_ids_each_once() -> None:
    pool = TaskPool.from_mapping({"IN_PROGRESS": ["p1", "p2"], "FAILED": ["f1"], "PENDING": ["n1"]})
    pool.discovered = {"IN_PROGRESS": ["d1"], "SUCCESSFUL": ["s1"]}
    taken = [pool.take_in_progress() for _ in range(5)]
    assert taken == ["p1", "p2", None, None, None]
    assert pool.cancellable_allowed("p1")
    assert not pool.cancellable_allowed("d1") and not pool.cancellable_allowed("f1")


def test_discovered_in_progress_only_when_allowed() -> None:
    pool = TaskPool.from_mapping({"IN_PROGRESS": ["p1"]})
    pool.discovered = {"IN_PROGRESS": ["d1", "p1"]}
    pool.allow_cancel_discovered = True
    taken = [pool.take_in_progress() for _ in range(4)]
    assert taken == ["p1", "d1", None, None]
    assert pool.cancellable_allowed("d1")


def test_take_in_progress_concurrently_hands_each_id_out_once() -> None:
    import threading

    ids = [f"t{i}" for i in range(50)]
    pool = TaskPool.from_mapping({"IN_PROGRESS": ids})
    got: list[str | None] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            value = pool.take_in_progress()
            with lock:
                got.append(value)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handed = [g for g in got if g is not None]
    assert sorted(handed) == sorted(ids)


def test_non_cancellable_never_lists_in_progress() -> None:
    pool = TaskPool.from_mapping({"IN_PROGRESS": ["p1"], "FAILED": ["f1"], "CANCELLED": ["c1"]})
    pool.discovered = {"IN_PROGRESS": ["d1"], "SUCCESSFUL": ["s1"], "FAILED": ["f1"]}
    pairs = pool.non_cancellable()
    assert sorted(pairs) == [("CANCELLED", "c1"), ("FAILED", "f1"), ("SUCCESSFUL", "s1")]
    assert pool.known_ids() == {"p1", "f1", "c1", "d1", "s1"}


def test_from_mapping_drops_empty_lists() -> None:
    pool = TaskPool.from_mapping({"IN_PROGRESS": [], "FAILED": ["f"]})
    assert pool.given == {"FAILED": ["f"]} and pool.take_in_progress() is None
    pool.add("IN_PROGRESS", "x")
    assert pool.by_status("IN_PROGRESS") == ["x"] and pool.take_in_progress() == "x"

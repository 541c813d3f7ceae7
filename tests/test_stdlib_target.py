"""benchmarks.stdlib_target, the independent http.server target of the benchmarks, behaves as the
seed says: tokens, bearer auth, paging, and 404/409/200 cancels, synchronous or pending."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from benchmarks.stdlib_target import StdlibTarget


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def login(http: requests.Session, target: StdlibTarget) -> None:
    answer = http.post(f"{target.base_url}/v1/tokens", json={"username": target.username,
                                                              "password": target.password}, timeout=10)
    assert answer.status_code == 201
    http.headers["Authorization"] = f"Bearer {answer.json()['accessToken']}"


def test_tokens_auth_paging_and_cancels(http: requests.Session) -> None:
    with StdlibTarget(tasks={"IN_PROGRESS": 2, "SUCCESSFUL": 1}) as target:
        base = f"{target.base_url}/v1"
        assert http.post(f"{base}/tokens", json={"username": target.username, "password": "no"},
                         timeout=10).status_code == 401
        assert http.get(f"{base}/tasks", timeout=10).status_code == 401
        http.headers["Authorization"] = "Bearer forged"
        assert http.delete(f"{base}/tasks/x", timeout=10).status_code == 401
        login(http, target)
        page = http.get(f"{base}/tasks", params={"pageSize": 2, "pageNumber": 1}, timeout=10).json()
        assert len(page["elements"]) == 1 and page["pageMetadata"]["totalPages"] == 2
        assert http.get(f"{base}/tasks", params={"pageSize": 101}, timeout=10).status_code == 400
        tasks = target.state_document()["tasks"]
        running, done = tasks["IN_PROGRESS"][0], tasks["SUCCESSFUL"][0]
        unknown = http.delete(f"{base}/tasks/no-such-task", timeout=10)
        assert unknown.status_code == 404 and unknown.json()["errorCode"] == "TA_TASK_NOT_FOUND"
        assert http.delete(f"{base}/tasks/{running[:8]}", timeout=10).status_code == 404  # no prefix matching
        assert http.delete(f"{base}/tasks/%2F", timeout=10).status_code == 404
        assert http.delete(f"{base}/tasks/{done}", timeout=10).status_code == 409
        cancelled = http.delete(f"{base}/tasks/{running}", timeout=10)
        assert cancelled.status_code == 200 and cancelled.content == b""
        assert http.get(f"{base}/tasks/{running}", timeout=10).json()["status"] == "CANCELLED"
        assert http.delete(f"{base}/tasks/{running}", timeout=10).status_code == 409
        assert http.get(f"{base}/tasks/{done}", timeout=10).json()["status"] == "SUCCESSFUL"
        assert target.counts["DELETE"] == 7 and len(target.log) == sum(target.counts.values())


def test_an_asynchronous_cancel_reads_in_progress_and_a_repeat_is_the_same_request(http: requests.Session) -> None:
    # The window is far longer than the test: nothing here waits for it.
    with StdlibTarget(settle_seconds=3600, tasks={"IN_PROGRESS": 1}) as target:
        login(http, target)
        [task] = target.state_document()["tasks"]["IN_PROGRESS"]
        url = f"{target.base_url}/v1/tasks/{task}"
        assert http.delete(url, timeout=10).status_code == 200
        assert http.get(url, timeout=10).json()["status"] == "IN_PROGRESS"
        assert http.delete(url, timeout=10).status_code == 200


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        StdlibTarget(latency_ms=-1)

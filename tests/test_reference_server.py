"""The embedded reference SDDC Manager tasks service, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from conformance.reference import (
    DEFECTS,
    STATUSES,
    PortInUse,
    ReferenceConfig,
    ReferenceServer,
)

PASSWORD = "reference-test-password"
TIMEOUT = 10.0
FINISHED = ("SUCCESSFUL", "FAILED", "CANCELLED", "COMPLETED_WITH_WARNING", "SKIPPED")


class ManualClock:
    """A monotonic clock that only moves when a test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Client:
    server: ReferenceServer
    session: requests.Session
    clock: ManualClock | None = None

    def advance(self, seconds: float) -> None:
        assert self.clock is not None, "start the server with running(clock=ManualClock())"
        self.clock.advance(seconds)

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def task_url(self, task_id: str) -> str:
        # quote(safe="") so that '/' in an id travels as %2F, as a careful client sends it.
        return self.url("/v1/tasks/" + quote(task_id, safe=""))

    def cancel(self, task_id: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.delete(self.task_url(task_id), **kwargs)

    def get_task(self, task_id: str) -> requests.Response:
        return self.session.get(self.task_url(task_id), timeout=TIMEOUT)

    def status(self, task_id: str) -> str:
        response = self.get_task(task_id)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def ids(self, status: str) -> list[str]:
        return self.server.store.ids_by_status()[status]


def login(base_url: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(base_url + "/v1/tokens", json={"username": "admin@local", "password": password},
                         timeout=TIMEOUT)


@contextmanager
def running(clock: ManualClock | None = None, **config: Any) -> Iterator[Client]:
    server = ReferenceServer(ReferenceConfig(password=PASSWORD, **config), clock=clock or time.monotonic)
    with server, requests.Session() as session:
        response = login(server.base_url)
        if response.status_code == 201:
            session.headers["Authorization"] = "Bearer " + response.json()["accessToken"]
        yield Client(server, session, clock)


@pytest.fixture
def client() -> Iterator[Client]:
    with running() as c:
        yield c


def assert_error_json(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body["message"], str)
    assert isinstance(body["errorCode"], str)
    if code is not None:
        assert body["errorCode"] == code
    return body


# -- tokens -------------------------------------------------------------------------------------------

def test_login_issues_token_pair(client: Client) -> None:
    response = login(client.server.base_url)
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["accessToken"], str) and body["accessToken"]
    assert isinstance(body["refreshToken"]["id"], str)


def test_bad_credentials_answer_401_error(client: Client) -> None:
    assert_error_json(login(client.server.base_url, password="wrong"), 401)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"username": "admin@local"}',
                                  b'{"username": 1, "password": 2}'])
def test_malformed_token_request_answers_400_error(client: Client, body: bytes) -> None:
    response = requests.post(client.url("/v1/tokens"), data=body, timeout=TIMEOUT,
                             headers={"Content-Type": "application/json"})
    assert_error_json(response, 400)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"},
                                     {"Authorization": "Bearer "}])
@pytest.mark.parametrize("path", ["/v1/tasks", "/v1/tasks/x", "/reference/requests", "/no/such/route"])
def test_missing_or_bad_bearer_answers_401_error(client: Client, headers: dict[str, str], path: str) -> None:
    response = requests.get(client.url(path), headers=headers, timeout=TIMEOUT)
    assert_error_json(response, 401)


def test_delete_without_token_answers_401_and_does_not_cancel(client: Client) -> None:
    task_id = client.ids("IN_PROGRESS")[0]
    assert_error_json(requests.delete(client.task_url(task_id), timeout=TIMEOUT), 401)
    assert client.status(task_id) == "IN_PROGRESS"


def test_access_token_expires_and_relogin_works() -> None:
    with running(token_ttl=0.3) as c:
        assert c.session.get(c.url("/v1/tasks"), timeout=TIMEOUT).status_code == 200
        time.sleep(0.6)
        assert_error_json(c.session.get(c.url("/v1/tasks"), timeout=TIMEOUT), 401)
        fresh = login(c.server.base_url).json()["accessToken"]
        again = requests.get(c.url("/v1/tasks"), headers={"Authorization": f"Bearer {fresh}"},
                             timeout=TIMEOUT)
        assert again.status_code == 200


def test_token_lifetime_in_requests_counts_accepted_requests_only() -> None:
    # token_lifetime_requests=3: three requests get in, the fourth answers 401; a request without
    # the token (or a login) does not use it up; a fresh login gets three more.
    with running(token_lifetime_requests=3) as c:
        assert [c.session.get(c.url("/v1/tasks"), timeout=TIMEOUT).status_code for _ in range(3)] == [200] * 3
        assert requests.get(c.url("/v1/tasks"), timeout=TIMEOUT).status_code == 401
        assert_error_json(c.session.get(c.url("/v1/tasks"), timeout=TIMEOUT), 401)
        # The log says which requests were authenticated: the refused one was not.
        assert [r.authenticated for r in c.server.request_log if r.method == "GET"] == [True] * 3 + [False] * 2
        fresh = login(c.server.base_url).json()["accessToken"]
        again = requests.get(c.url("/v1/tasks"), headers={"Authorization": f"Bearer {fresh}"}, timeout=TIMEOUT)
        assert again.status_code == 200


def test_token_store_uses_and_their_bounds() -> None:
    from conformance.reference.store import TokenStore

    store = TokenStore(3600.0, max_uses=1, max_tokens=1)
    access, _ = store.issue_pair()
    assert store.is_valid(access) and store.is_valid(access)  # looking is not using
    assert store.use(access) and not store.use(access) and not store.is_valid(access)
    newer, _ = store.issue_pair()  # evicts the first, and its count of uses with it
    assert store.use(newer) and store._uses == {newer: 1}
    refused, _ = (zero := TokenStore(3600.0, max_uses=0)).issue_pair()
    assert not zero.use(refused)
    with pytest.raises(ValueError, match="max_uses"):
        TokenStore(1.0, max_uses=-1)
    with pytest.raises(ValueError, match="token_lifetime_requests"):
        ReferenceConfig(token_lifetime_requests=-1)


def test_refresh_and_invalidate_refresh_token(client: Client) -> None:
    refresh_id = login(client.server.base_url).json()["refreshToken"]["id"]
    refresh_url = client.url("/v1/tokens/access-token/refresh")
    refreshed = requests.patch(refresh_url, json=refresh_id, timeout=TIMEOUT)
    assert refreshed.status_code == 200
    access = refreshed.json()
    assert isinstance(access, str)
    ok = requests.get(client.url("/v1/tasks"), headers={"Authorization": f"Bearer {access}"}, timeout=TIMEOUT)
    assert ok.status_code == 200
    raw = requests.patch(client.url("/v1/tokens/access-token/refresh"), data=refresh_id, timeout=TIMEOUT)
    assert raw.status_code == 200
    gone = requests.delete(client.url("/v1/tokens/refresh-token"), json=refresh_id, timeout=TIMEOUT)
    assert gone.status_code == 200
    after = requests.patch(client.url("/v1/tokens/access-token/refresh"), json=refresh_id, timeout=TIMEOUT)
    assert_error_json(after, 404)


# -- GET ----------------------------------------------------------------------------------------------

def test_list_pages_in_creation_order(client: Client) -> None:
    seen: list[str] = []
    page_number = 0
    while True:
        response = client.session.get(client.url("/v1/tasks"), timeout=TIMEOUT,
                                      params={"pageSize": 7, "pageNumber": page_number})
        assert response.status_code == 200
        body = response.json()
        meta = body["pageMetadata"]
        assert meta == {"pageNumber": page_number, "pageSize": 7, "totalElements": 20, "totalPages": 3}
        if not body["elements"]:
            break
        seen += [task["id"] for task in body["elements"]]
        page_number += 1
    assert seen == [task.id for task in client.server.store.list()]
    default = client.session.get(client.url("/v1/tasks"), timeout=TIMEOUT).json()
    assert default["pageMetadata"]["pageSize"] == 20 and len(default["elements"]) == 20


@pytest.mark.parametrize("params", [{"pageSize": 101}, {"pageSize": 0}, {"pageNumber": -1}, {"pageSize": "x"},
                                    {"taskStatus": "RUNNING"}])
def test_list_rejects_bad_query_with_400_error(client: Client, params: dict[str, Any]) -> None:
    assert_error_json(client.session.get(client.url("/v1/tasks"), params=params, timeout=TIMEOUT), 400)


@pytest.mark.parametrize("spelling", ["IN_PROGRESS", "in_progress", "In Progress"])
def test_list_filters_by_status_case_insensitively(client: Client, spelling: str) -> None:
    params = {"taskStatus": spelling}
    body = client.session.get(client.url("/v1/tasks"), params=params, timeout=TIMEOUT).json()
    assert [task["id"] for task in body["elements"]] == client.ids("IN_PROGRESS")
    assert {task["status"] for task in body["elements"]} == {"IN_PROGRESS"}


def test_list_filters_by_type_and_name(client: Client) -> None:
    task = client.server.store.create("PENDING", name="Special task", type_="SPECIAL_TYPE")
    for params in ({"taskType": "SPECIAL_TYPE"}, {"taskName": "Special task"}):
        body = client.session.get(client.url("/v1/tasks"), params=params, timeout=TIMEOUT).json()
        assert [t["id"] for t in body["elements"]] == [task.id]


@pytest.mark.parametrize("status", STATUSES)
def test_get_task_fields(client: Client, status: str) -> None:
    task_id = client.ids(status)[0]
    body = client.get_task(task_id).json()
    assert body["id"] == task_id and body["status"] == status
    assert body["isCancellable"] is (status == "IN_PROGRESS")
    assert body["isRetryable"] is (status == "FAILED")
    assert ("completionTimestamp" in body) is (status not in ("PENDING", "IN_PROGRESS"))
    for key in ("name", "type", "creationTimestamp"):
        assert isinstance(body[key], str)
    for key in ("subTasks", "errors", "resources"):
        assert isinstance(body[key], list)


def test_get_unknown_task_answers_vcf_shaped_404(client: Client) -> None:
    body = assert_error_json(client.get_task("no-such-task"), 404, "TA_TASK_NOT_FOUND")
    assert set(body) == {"errorCode", "arguments", "message", "referenceToken"}
    assert body["arguments"] == ["no-such-task"]
    assert body["message"] == "Task with ID no-such-task not found"
    token = body["referenceToken"]
    assert len(token) == 6 and token.isalnum() and token.upper() == token


# -- DELETE -------------------------------------------------------------------------------------------

def test_cancel_in_progress_answers_200_without_body(client: Client) -> None:
    task_id = client.ids("IN_PROGRESS")[0]
    response = client.cancel(task_id)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert "Content-Type" not in response.headers
    body = client.get_task(task_id).json()
    assert body["status"] == "CANCELLED" and "completionTimestamp" in body and body["isCancellable"] is False
    recancel = assert_error_json(client.cancel(task_id), 409, "TA_TASK_CAN_NOT_BE_CANCELLED")
    assert recancel["message"] == "Task can not be cancelled. Only a IN_PROGRESS task can be cancelled."
    assert recancel["arguments"] == [task_id]


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "IN_PROGRESS"])
def test_cancel_of_other_statuses_answers_409_and_changes_nothing(client: Client, status: str) -> None:
    task_id = client.ids(status)[0]
    assert_error_json(client.cancel(task_id), 409, "TA_TASK_CAN_NOT_BE_CANCELLED")
    assert client.status(task_id) == status


@pytest.mark.parametrize("task_id", ["no-such-task", "ünïcødé-☃", "a/b", "../../v1/tokens", "x" * 3000,
                                     " ", "%", "?q=1", "\x00", "00000000-0000-4000-8000-000000000000"])
def test_cancel_of_unknown_or_odd_ids_answers_404_error(client: Client, task_id: str) -> None:
    body = assert_error_json(client.cancel(task_id), 404, "TA_TASK_NOT_FOUND")
    assert body["arguments"] == [task_id]


def test_invalid_percent_encoding_is_just_an_unknown_id(client: Client) -> None:
    assert_error_json(client.session.delete(client.url("/v1/tasks/%FF%FE"), timeout=TIMEOUT), 404)


@pytest.mark.parametrize("path", ["/v1/tasks/", "/v1/nothing", "/", "/v1/tasks/x/"])
def test_unknown_routes_and_empty_id_answer_404_error(client: Client, path: str) -> None:
    assert_error_json(client.session.delete(client.url(path), timeout=TIMEOUT), 404)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/v1/tasks/x"), ("POST", "/v1/tasks"),
                                              ("GET", "/v1/tokens")])
def test_wrong_method_answers_405_error_with_allow(client: Client, method: str, path: str) -> None:
    response = client.session.request(method, client.url(path), timeout=TIMEOUT)
    assert_error_json(response, 405)
    assert response.headers["Allow"]


def _race(client: Client, task_id: str, racers: int = 8) -> list[int]:
    barrier = threading.Barrier(racers)
    statuses: list[int] = []
    headers = dict(client.session.headers)

    def cancel() -> None:
        barrier.wait()
        response = requests.delete(client.task_url(task_id), headers=headers, timeout=TIMEOUT)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=cancel) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_racing_cancels_exactly_one_wins(client: Client) -> None:
    task_id = client.ids("IN_PROGRESS")[0]
    assert _race(client, task_id) == [200] + [409] * 7
    assert client.status(task_id) == "CANCELLED"


def test_keep_alive_connection_is_reused(client: Client) -> None:
    assert client.server.port is not None
    connection = http.client.HTTPConnection("127.0.0.1", client.server.port, timeout=TIMEOUT)
    headers = {"Authorization": str(client.session.headers["Authorization"])}
    try:
        sockets = []
        for task_id in client.ids("IN_PROGRESS")[:3]:
            connection.request("DELETE", "/v1/tasks/" + task_id, headers=headers)
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"")
            sockets.append(connection.sock)
        assert sockets[0] is not None and sockets.count(sockets[0]) == 3
    finally:
        connection.close()


# -- request log, state document, extension -----------------------------------------------------------

def test_request_log_records_each_request(client: Client) -> None:
    task_id = client.ids("IN_PROGRESS")[0]
    client.server.request_log.clear()
    client.cancel(task_id)
    client.cancel("a/b")
    requests.delete(client.task_url(task_id), timeout=TIMEOUT)
    cancel, odd, anonymous = client.server.request_log
    assert (cancel.method, cancel.task_id, cancel.status_code, cancel.task_status_before,
            cancel.authenticated) == ("DELETE", task_id, 200, "IN_PROGRESS", True)
    assert (odd.path, odd.task_id, odd.status_code, odd.task_status_before) == (
        "/v1/tasks/a%2Fb", "a/b", 404, None)
    assert (anonymous.status_code, anonymous.task_status_before, anonymous.authenticated) == (
        401, "CANCELLED", False)
    assert cancel.timestamp <= odd.timestamp <= anonymous.timestamp
    served = client.session.get(client.url("/reference/requests"), timeout=TIMEOUT).json()
    assert served["records"][:3] == [record.to_json() for record in (cancel, odd, anonymous)]


def test_request_log_file_gets_json_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "requests.jsonl"
    with ReferenceServer(ReferenceConfig(password=PASSWORD), request_log_file=str(log_file)) as server:
        login(server.base_url)
        requests.get(server.base_url + "/v1/tasks", timeout=TIMEOUT)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(line["method"], line["path"], line["status_code"]) for line in lines] == [
        ("POST", "/v1/tokens", 201), ("GET", "/v1/tasks", 401)]


def test_state_document_shape(client: Client) -> None:
    document = client.server.state_document()
    assert document["base_url"] == client.server.base_url
    assert (document["username"], document["password"]) == ("admin@local", PASSWORD)
    assert list(document["tasks"]) == list(STATUSES)
    assert {status: len(ids) for status, ids in document["tasks"].items()} == {
        status: (8 if status == "IN_PROGRESS" else 2) for status in STATUSES}
    json.dumps(document)


def test_seed_tasks_and_default_password() -> None:
    config = ReferenceConfig(seed_tasks={"in progress": 1})
    assert len(config.password) >= 16 and config.password != ReferenceConfig().password
    assert config.password not in repr(config)
    with ReferenceServer(config) as server:
        assert {s: len(ids) for s, ids in server.store.ids_by_status().items() if ids} == {"IN_PROGRESS": 1}
        assert server.create_tasks("SKIPPED", 2) == server.store.ids_by_status()["SKIPPED"]


def test_reference_task_creation(client: Client) -> None:
    response = client.session.post(client.url("/reference/tasks"), json={"status": "IN_PROGRESS", "count": 3},
                                   timeout=TIMEOUT)
    assert response.status_code == 201
    ids = response.json()["ids"]
    assert len(ids) == 3 and ids == client.ids("IN_PROGRESS")[-3:]
    assert client.cancel(ids[0]).status_code == 200
    default = client.session.post(client.url("/reference/tasks"), timeout=TIMEOUT)
    assert default.status_code == 201 and len(default.json()["ids"]) == 1
    bad_specs: list[Any] = [{"status": "RUNNING"}, {"count": 0}, {"count": "2"}, []]
    for bad in bad_specs:
        response = client.session.post(client.url("/reference/tasks"), json=bad, timeout=TIMEOUT)
        assert_error_json(response, 400)
    anonymous = requests.post(client.url("/reference/tasks"), json={}, timeout=TIMEOUT)
    assert_error_json(anonymous, 401)


def test_unknown_defect_is_rejected() -> None:
    with pytest.raises(ValueError, match="no-such-defect") as excinfo:
        ReferenceConfig(defects=frozenset({"no-such-defect", "html-500"}))
    assert "racing-cancels" in str(excinfo.value)


def test_catalogue_is_well_formed() -> None:
    for name, defect in DEFECTS.items():
        assert defect.name == name
        assert defect.expect in ("fail", "warn", "pass")
        assert (defect.expect == "pass") == (defect.category == "variation")
        if defect.expect == "pass":
            assert defect.requirements == ()
        assert defect.description.endswith(".")


def test_server_stops_and_is_idempotent() -> None:
    server = ReferenceServer(ReferenceConfig(password=PASSWORD)).start()
    base_url = server.base_url
    server.stop()
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(base_url + "/v1/tasks", timeout=2)


def test_occupied_port_raises_port_in_use(capfd: pytest.CaptureFixture[str]) -> None:
    with ReferenceServer(ReferenceConfig(password=PASSWORD)) as first:
        assert first.port is not None
        second = ReferenceServer(ReferenceConfig(password=PASSWORD), port=first.port)
        with pytest.raises(PortInUse, match=f"127.0.0.1:{first.port}") as excinfo:
            second.start()
        assert isinstance(excinfo.value, OSError) and excinfo.value.port == first.port
        second.stop()  # nothing to stop, and no error
        assert requests.get(first.base_url + "/v1/tasks", timeout=TIMEOUT).status_code == 401
    captured = capfd.readouterr()
    assert "ERROR" not in captured.err and "address already in use" not in captured.err.lower()


def test_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    for index, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(cert_file), append=index > 0)
    with ReferenceServer(ReferenceConfig(password=PASSWORD), ssl_certfile=str(cert_file),
                         ssl_keyfile=str(key_file)) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
        response = requests.post(server.base_url + "/v1/tokens", verify=str(ca_file), timeout=TIMEOUT,
                                 json={"username": "admin@local", "password": PASSWORD})
        assert response.status_code == 201
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.base_url + "/v1/tasks", timeout=TIMEOUT)


def test_serve_forever_writes_state_and_stops_on_sigterm(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    script = (
        "import sys\n"
        "from conformance.reference import ReferenceConfig, serve_forever\n"
        "serve_forever(ReferenceConfig(password='pw'), host='127.0.0.1', port=0, state_file=sys.argv[1],\n"
        "              request_log_file=None, on_ready=lambda url: print(url, flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-c", script, str(state_file)], stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        state = json.loads(state_file.read_text())
        assert state["base_url"] == base_url and state["password"] == "pw"
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert login(base_url, "pw").status_code == 201
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
        assert process.returncode == 0 and out.strip() == "stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- defects ------------------------------------------------------------------------------------------

UNKNOWN = "no-such-task"


def _error_of_unknown(c: Client) -> dict[str, Any]:
    return assert_error_json(c.cancel(UNKNOWN), 404, "TA_TASK_NOT_FOUND")


def _nesting_depth(body: dict[str, Any]) -> int:
    depth = 1
    while body.get("nestedErrors"):
        body = body["nestedErrors"][0]
        depth += 1
    return depth


def check_wrong_success_status(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 204
    assert c.status(task_id) == "CANCELLED"


def check_accepted_202(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 202
    assert c.status(task_id) == "CANCELLED"


def check_odd_id_400(c: Client) -> None:
    assert_error_json(c.cancel("a b"), 400)
    assert_error_json(c.cancel("ü"), 400)
    assert_error_json(c.cancel("abc-123"), 404)


def check_html_500(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")


def check_unknown_id_500(c: Client) -> None:
    assert_error_json(c.cancel(UNKNOWN), 500)


def check_redirect_cancel(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    response = c.cancel(task_id, allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == c.task_url(task_id) + "/"
    assert c.status(task_id) == "IN_PROGRESS"
    assert c.session.delete(response.headers["Location"], timeout=TIMEOUT).status_code == 200
    assert c.status(task_id) == "CANCELLED"


def check_missing_error_body(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert (response.status_code, response.content) == (404, b"")
    conflict = c.cancel(c.ids("SUCCESSFUL")[0])
    assert (conflict.status_code, conflict.content) == (409, b"")


def check_plain_text_error(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert (response.status_code, response.text) == (404, "Task not found")
    assert response.headers["Content-Type"].startswith("text/plain")


def check_error_wrong_type_top(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.status_code == 404 and response.json()["message"] == 7


def check_error_wrong_type_nested(c: Client) -> None:
    body = c.cancel(UNKNOWN).json()
    assert isinstance(body["errorCode"], str)
    assert body["nestedErrors"][0]["nestedErrors"][0]["nestedErrors"][0]["errorCode"] == 123
    assert _nesting_depth(body) == 4


def check_error_bad_cause(c: Client) -> None:
    body = c.cancel(UNKNOWN).json()
    assert body["causes"] == [{"message": "ok", "type": "x"}, {"message": 7, "type": ["x"]}]


def check_error_as_array(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    body = response.json()
    assert response.status_code == 404 and isinstance(body, list) and len(body) == 1
    assert body[0]["errorCode"] == "TA_TASK_NOT_FOUND"


def check_context_not_object(c: Client) -> None:
    assert c.cancel(UNKNOWN).json()["context"] == "tasks-service"


def check_arguments_not_strings(c: Client) -> None:
    assert c.cancel(UNKNOWN).json()["arguments"] == [42]


def check_nested_errors_not_array(c: Client) -> None:
    assert c.cancel(UNKNOWN).json()["nestedErrors"] == {"message": "x"}


def check_error_null_fields(c: Client) -> None:
    body = c.cancel(UNKNOWN).json()
    assert body["errorType"] is None and body["remediationMessage"] is None
    assert isinstance(body["message"], str)


def check_invalid_json_error(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.text)


def check_json_error_as_text_plain(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert json.loads(response.text)["errorCode"] == "TA_TASK_NOT_FOUND"


def check_success_with_body(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    response = c.cancel(task_id)
    assert response.status_code == 200
    assert response.json()["id"] == task_id and response.json()["status"] == "CANCELLED"


def check_cancel_finished_task(c: Client) -> None:
    for status in ("SUCCESSFUL", "FAILED", "COMPLETED_WITH_WARNING", "SKIPPED"):
        task_id = c.ids(status)[0]
        assert c.cancel(task_id).status_code == 200
        assert c.status(task_id) == "CANCELLED"
    assert c.cancel(c.ids("PENDING")[0]).status_code == 409


def check_pending_cancellable(c: Client) -> None:
    task_id = c.ids("PENDING")[0]
    assert c.cancel(task_id).status_code == 200
    assert c.status(task_id) == "CANCELLED"


def check_recancel_200(c: Client) -> None:
    assert c.cancel(c.ids("CANCELLED")[0]).status_code == 200
    task_id = c.ids("IN_PROGRESS")[0]
    assert [c.cancel(task_id).status_code for _ in range(2)] == [200, 200]


def check_cancel_not_applied(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 200
    assert c.status(task_id) == "IN_PROGRESS"


def check_forget_cancelled(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 200
    assert_error_json(c.get_task(task_id), 404)
    assert_error_json(c.cancel(task_id), 404)


def check_unknown_id_409(c: Client) -> None:
    assert_error_json(c.cancel(UNKNOWN), 409)


def check_unknown_id_200(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert (response.status_code, response.content) == (200, b"")


def check_cancel_wrong_task(c: Client) -> None:
    first, second, third = c.ids("IN_PROGRESS")[:3]
    assert c.cancel(first).status_code == 200
    assert [c.status(t) for t in (first, second, third)] == ["CANCELLED", "CANCELLED", "IN_PROGRESS"]


def check_racing_cancels(c: Client) -> None:
    statuses = _race(c, c.ids("IN_PROGRESS")[0])
    assert statuses.count(200) > 1


def check_auth_ignored(c: Client) -> None:
    assert requests.get(c.url("/v1/tasks"), timeout=TIMEOUT).status_code == 200
    assert requests.delete(c.task_url(c.ids("IN_PROGRESS")[0]), timeout=TIMEOUT).status_code == 200


def check_any_bearer_accepted(c: Client) -> None:
    forged = {"Authorization": "Bearer forged"}
    assert requests.get(c.url("/v1/tasks"), headers=forged, timeout=TIMEOUT).status_code == 200
    assert_error_json(requests.get(c.url("/v1/tasks"), timeout=TIMEOUT), 401)


def check_reserved_char_500(c: Client) -> None:
    assert_error_json(c.cancel("a!b"), 500)
    assert c.server.port is not None
    connection = http.client.HTTPConnection("127.0.0.1", c.server.port, timeout=TIMEOUT)
    try:
        connection.request("DELETE", "/v1/tasks/x!y", headers={"Authorization": _auth(c)})
        raw = connection.getresponse()
        assert (raw.status, json.loads(raw.read())["errorCode"]) == (500, "TA_UNEXPECTED_ERROR")
    finally:
        connection.close()
    assert_error_json(c.cancel(UNKNOWN), 404)


def check_unknown_uuid_400(c: Client) -> None:
    assert_error_json(c.cancel("00000000-0000-4000-8000-000000000000"), 400)
    assert_error_json(c.cancel(UNKNOWN), 404)
    assert c.cancel(c.ids("IN_PROGRESS")[0]).status_code == 200


def check_generated_204(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert (response.status_code, response.content) == (204, b"")
    assert_error_json(c.cancel("00000000-0000-4000-8000-000000000000"), 404)


def check_cancel_never_settles(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 200
    c.advance(3000)  # within the token ttl
    assert c.status(task_id) == "IN_PROGRESS"
    assert c.cancel(task_id).status_code == 200
    assert c.status(task_id) == "IN_PROGRESS"


def check_changes_after_read(c: Client) -> None:
    by_reads, by_time = c.ids("IN_PROGRESS")[:2]
    assert c.cancel(by_reads).status_code == 200
    assert [c.status(by_reads) for _ in range(3)] == ["CANCELLED", "CANCELLED", "FAILED"]
    assert c.cancel(by_time).status_code == 200
    assert c.status(by_time) == "CANCELLED"
    c.advance(1.5)
    assert c.status(by_time) == "FAILED"


def check_partial_match_ids(c: Client) -> None:
    first, second, third = c.ids("IN_PROGRESS")[:3]
    assert c.get_task(first[:8]).json()["id"] == first
    assert c.get_task(f" {first}\t").json()["id"] == first
    assert c.cancel(second + "-trailing").status_code == 200
    assert c.status(second) == "CANCELLED"
    assert c.cancel(" " + third).status_code == 200
    assert c.status(third) == "CANCELLED"
    assert_error_json(c.cancel(UNKNOWN), 404)


def check_refused_cancel_changes_task(c: Client) -> None:
    for status in ("SUCCESSFUL", "PENDING"):
        task_id = c.ids(status)[0]
        assert_error_json(c.cancel(task_id), 409, "TA_TASK_CAN_NOT_BE_CANCELLED")
        assert c.status(task_id) == "CANCELLED"


def check_vanish_after_409(c: Client) -> None:
    task_id = c.ids("SUCCESSFUL")[0]
    assert_error_json(c.cancel(task_id), 409)
    assert_error_json(c.get_task(task_id), 404)
    assert_error_json(c.cancel(task_id), 404)


def check_race_zero_winners(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert _race(c, task_id) == [409] * 8
    assert c.status(task_id) == "CANCELLED"
    lone = c.ids("IN_PROGRESS")[0]
    assert c.cancel(lone).status_code == 200


def check_race_404_losers(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert _race(c, task_id) == [200] + [404] * 7
    assert c.status(task_id) == "CANCELLED"
    assert_error_json(c.cancel(task_id), 409)


def check_async_cancel_repeat_200(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 200
    assert c.status(task_id) == "IN_PROGRESS"
    assert c.cancel(task_id).content == b""
    c.advance(0.999)
    assert c.status(task_id) == "IN_PROGRESS"
    c.advance(0.001)
    assert c.status(task_id) == "CANCELLED"
    assert_error_json(c.cancel(task_id), 409, "TA_TASK_CAN_NOT_BE_CANCELLED")
    raced = c.ids("IN_PROGRESS")[0]
    assert _race(c, raced) == [200] * 8


def check_async_cancel_repeat_409(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 200
    assert_error_json(c.cancel(task_id), 409, "TA_TASK_CAN_NOT_BE_CANCELLED")
    assert c.status(task_id) == "IN_PROGRESS"
    c.advance(1.0)
    assert c.status(task_id) == "CANCELLED"
    assert_error_json(c.cancel(task_id), 409)


def check_non_cancellable_in_progress(c: Client) -> None:
    listed = c.session.get(c.url("/v1/tasks"), params={"taskStatus": "IN_PROGRESS"}, timeout=TIMEOUT).json()
    flags = [task["isCancellable"] for task in listed["elements"]]
    assert flags == [False, False] + [True] * (len(flags) - 2)
    locked, free = listed["elements"][0]["id"], listed["elements"][2]["id"]
    assert c.get_task(locked).json()["isCancellable"] is False
    assert_error_json(c.cancel(locked), 409, "TA_TASK_CAN_NOT_BE_CANCELLED")
    assert c.status(locked) == "IN_PROGRESS"
    assert c.get_task(free).json()["isCancellable"] is True
    assert c.cancel(free).status_code == 200


def _raw(c: Client, method: str, path: str) -> tuple[int, str, bytes]:
    assert c.server.port is not None
    connection = http.client.HTTPConnection("127.0.0.1", c.server.port, timeout=TIMEOUT)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Authorization", _auth(c))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def _auth(c: Client) -> str:
    return str(c.session.headers["Authorization"])


def check_servlet_url_hygiene(c: Client) -> None:
    status, media, body = _raw(c, "DELETE", "/v1/tasks/a%2Fb")
    assert (status, media.split(";")[0]) == (400, "text/html") and b"<html" in body
    status, media, _ = _raw(c, "GET", "/v1/tasks/" + "x" * 4100)
    assert (status, media.split(";")[0]) == (414, "text/html")
    status, media, _ = _raw(c, "DELETE", "/v1/tasks/a%20b")
    assert (status, media) == (404, "application/json")
    task_id = c.ids("IN_PROGRESS")[0]
    assert _raw(c, "DELETE", "/v1/tasks/" + task_id)[0] == 200


def check_backpressure_429(c: Client) -> None:
    answers = [c.session.get(c.url("/v1/tasks"), timeout=TIMEOUT) for _ in range(55)]
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * 49 + [429] * 6  # the login took one of the 50
    assert answers[-1].headers["Retry-After"] == "1" and answers[-1].text
    c.advance(1.0)
    assert c.session.get(c.url("/v1/tasks"), timeout=TIMEOUT).status_code == 200
    assert login(c.server.base_url).status_code == 201


def check_non_uuid_task_ids(c: Client) -> None:
    listed = c.session.get(c.url("/v1/tasks"), params={"pageSize": 100}, timeout=TIMEOUT).json()
    ids = [task["id"] for task in listed["elements"]]
    hidden = c.server.unpooled_task_ids()
    assert {"0", "a", "%"} <= set(hidden) and set(hidden) <= set(ids)
    assert ids[:len(hidden)] == hidden
    pooled = {tid for tids in c.server.state_document()["tasks"].values() for tid in tids}
    assert not pooled & set(hidden)
    statuses = {task["id"]: task["status"] for task in listed["elements"]}
    assert [tid for tid in hidden if statuses[tid] == "IN_PROGRESS"] == ["0", "a", "%", "a b"]
    assert c.status("a b") == "IN_PROGRESS"
    assert c.cancel("%").status_code == 200
    reached = [r for r in c.server.request_log if r.method == "DELETE" and r.task_id in hidden]
    assert [(r.task_id, r.path, r.task_status_before) for r in reached] == [
        ("%", "/v1/tasks/%25", "IN_PROGRESS")]


def check_task_finishes_before_use(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    other = c.ids("IN_PROGRESS")[1]
    assert c.get_task(task_id).json()["isCancellable"] is True
    assert c.status(task_id) == "SUCCESSFUL"
    assert_error_json(c.cancel(task_id), 409)
    assert [c.status(other) for _ in range(2)] == ["IN_PROGRESS", "IN_PROGRESS"]


def check_minimal_error(c: Client) -> None:
    body = c.cancel(UNKNOWN).json()
    assert set(body) == {"message", "errorCode"}
    assert set(c.cancel(c.ids("SKIPPED")[0]).json()) == {"message", "errorCode"}


def check_newer_build_fields(c: Client) -> None:
    body = _error_of_unknown(c)
    assert isinstance(body["label"], str) and isinstance(body["remediationUrl"], str)
    notification = body["notifications"][0]
    assert notification["severity"] == "ERROR"
    assert notification["remediations"][0]["link"] == "https://docs.example.invalid/x"
    assert all(isinstance(value, str) for value in body["context"].values())


def check_charset_content_type(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.json()["errorCode"] == "TA_TASK_NOT_FOUND"


def check_deep_valid_nesting(c: Client) -> None:
    body = _error_of_unknown(c)
    assert _nesting_depth(body) == 300


def check_title_case_status(c: Client) -> None:
    assert c.status(c.ids("IN_PROGRESS")[0]) == "In Progress"
    assert c.status(c.ids("COMPLETED_WITH_WARNING")[0]) == "COMPLETED_WITH_WARNING"
    task_id = c.ids("IN_PROGRESS")[0]
    assert c.cancel(task_id).status_code == 200
    assert c.status(task_id) == "Cancelled"


def check_vendor_error_json(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.headers["Content-Type"] == "application/vnd.vmware.error+json"
    assert response.json()["errorCode"] == "TA_TASK_NOT_FOUND"


def check_slow_responses(c: Client) -> None:
    # Only shows that the answer does not come within a short client timeout; never waits the full 3 s.
    with pytest.raises(requests.Timeout):
        c.cancel(UNKNOWN, timeout=0.5)


def check_huge_error_body(c: Client) -> None:
    with c.cancel(UNKNOWN, stream=True) as response:
        assert response.status_code == 404
        assert response.headers["Content-Length"] == str(30 * 1024 * 1024)
        first = next(response.iter_content(1024))
        assert first.startswith(b'{"errorCode": "TA_TASK_NOT_FOUND", "message": "aaa')


def _deep_text(c: Client) -> bytes:
    response = c.cancel(UNKNOWN)
    assert response.status_code == 404 and response.headers["Content-Type"] == "application/json"
    # json.loads would hit Python's recursion limit on these bodies, which is the point of them.
    return response.content


def check_deep_invalid_nesting(c: Client) -> None:
    text = _deep_text(c)
    assert text.count(b'"nestedErrors": [') == 4999
    assert b'"errorCode": 123' in text


def check_deep_valid_nesting_10k(c: Client) -> None:
    text = _deep_text(c)
    assert text.count(b'"nestedErrors": [') == 9999
    assert b'"errorCode": 123' not in text and text.endswith(b"]}" * 9999)


def check_invalid_utf8_error(c: Client) -> None:
    response = c.cancel(UNKNOWN)
    assert response.status_code == 404 and b"\xff\xfe" in response.content
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("utf-8")


def check_redirect_other_host(c: Client) -> None:
    task_id = c.ids("IN_PROGRESS")[0]
    response = c.cancel(task_id, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == f"http://127.0.0.2:{c.server.port}/v1/tasks/{task_id}"
    assert c.status(task_id) == "IN_PROGRESS"


# -- identity: each defect's lookup makes another spelling of an id reach its task ------------------
def _reached(c: Client, spelled: str, task_id: str, *, wire: str | None = None) -> None:
    """GET and DELETE of `spelled` (not the task's id; `wire`: its path segment) reach the IN_PROGRESS
    task `task_id`, and an unknown id still answers 404."""
    url = c.url("/v1/tasks/" + (wire if wire is not None else quote(spelled, safe="")))
    got = c.session.get(url, timeout=TIMEOUT)
    assert got.status_code == 200 and got.json()["id"] == task_id, (spelled, got.text)
    assert c.session.delete(url, timeout=TIMEOUT).status_code == 200
    assert c.status(task_id) == "CANCELLED"
    assert_error_json(c.cancel(UNKNOWN), 404)


def _not_reached(c: Client, spelled: str) -> None:
    assert c.get_task(spelled).status_code == 404 and c.cancel(spelled).status_code == 404


def check_trim_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    _reached(c, f" {first}\t", first)
    _not_reached(c, f"\u00a0{second}")  # String.trim() keeps a no-break space


def check_pad_space_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    _reached(c, first + "  ", first)
    _not_reached(c, " " + second)  # PAD SPACE pads at the end only


def check_case_insensitive_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    assert " " in first and not first.isascii()  # string ids
    _reached(c, first.swapcase(), first)


def check_prefix_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    _reached(c, first[:-1], first)
    _reached(c, second[:8], second)
    _not_reached(c, c.ids("IN_PROGRESS")[2][:7])


def check_truncated_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    _reached(c, first + "0-extra", first)


def check_like_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    _reached(c, "_" + first[1:], first)
    _reached(c, second[:30] + "%" + second[-5:], second)
    # Not a pattern of another length, nor one that matches several tasks.
    _not_reached(c, "%")
    _not_reached(c, "_" * 36)


def check_numeric_ids(c: Client) -> None:
    first, second, third = c.ids("IN_PROGRESS")[:3]
    assert first.isdigit()
    _reached(c, "+0" + first, first)
    _reached(c, second + "e0", second)
    _reached(c, "".join(chr(ord(d) + 0xFEE0) for d in third), third)  # fullwidth digits


def check_double_decoded_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    _reached(c, f"%{ord(first[0]):02X}{first[1:]}", first)


def check_path_parameter_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    _reached(c, first + ";jsessionid=1", first)


def check_plus_space_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    _reached(c, first.replace(" ", "+"), first, wire=quote(first.replace(" ", "+"), safe="+"))
    _not_reached(c, second.replace(" ", "_"))


def check_accent_insensitive_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    i = next(i for i, ch in enumerate(first) if ch in "abcdef")
    _reached(c, first[:i] + {"a": "á", "b": "ḃ", "c": "ç", "d": "ď", "e": "é", "f": "ḟ"}[first[i]] + first[i + 1:],
             first)


def check_invisible_char_ids(c: Client) -> None:
    first, second, third = c.ids("IN_PROGRESS")[:3]
    _reached(c, first[:4] + "\u200b" + first[4:], first)
    _reached(c, "\ufeff" + second, second)
    _reached(c, third[:1] + "\u00ad" + third[1:], third)


def check_nfkc_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    _reached(c, chr(ord(first[0]) + 0xFEE0) + first[1:], first)


def check_nfc_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    decomposed = unicodedata.normalize("NFD", first)
    assert decomposed != first
    _reached(c, decomposed, first)


def check_nul_truncated_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    _reached(c, first + "\x00.json", first)


def check_integer_task_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    assert first.isdigit() and int(second) == int(first) + 1
    _not_reached(c, "0" + first)
    assert c.cancel(first).status_code == 200 and c.status(first) == "CANCELLED"


def check_string_task_ids(c: Client) -> None:
    first = c.ids("IN_PROGRESS")[0]
    assert " " in first and not first.isascii()
    _not_reached(c, first.swapcase())
    _not_reached(c, unicodedata.normalize("NFD", first))
    assert c.cancel(first).status_code == 200 and c.status(first) == "CANCELLED"


def check_uuid_case_insensitive_ids(c: Client) -> None:
    first, second = c.ids("IN_PROGRESS")[:2]
    _reached(c, first.upper(), first)
    _not_reached(c, second.upper() + " ")


DEFECT_CHECKS: dict[str, Callable[[Client], None]] = {
    name: globals()["check_" + name.replace("-", "_")] for name in DEFECTS
}


# A wide race window so that all racers reliably overlap even on a loaded machine.
DEFECT_CONFIG: dict[str, dict[str, Any]] = {name: {"race_window": 0.5} for name in (
    "racing-cancels", "race-zero-winners", "race-404-losers")}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_changes_observable_behaviour(name: str) -> None:
    # A manual clock: checks move time on (settling, expiry, rate limits) without waiting.
    with running(ManualClock(), defects=frozenset({name}), **DEFECT_CONFIG.get(name, {})) as c:
        DEFECT_CHECKS[name](c)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_defect_is_off_by_default(name: str) -> None:
    assert name not in ReferenceConfig().defects


def test_identity_defects_combine() -> None:
    with running(defects=frozenset({"trim-ids", "pad-space-ids"})) as c:
        first, second = c.ids("IN_PROGRESS")[:2]
        assert c.get_task("\t" + first).json()["id"] == first
        assert c.get_task(second + "  ").json()["id"] == second

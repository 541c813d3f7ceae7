"""An independent SDDC Manager tasks service on the standard library alone, for benchmarks.

    python -m benchmarks.stdlib_target [--latency-ms 50] [--settle-seconds 3] [--state-file FILE]

Not the suite's reference server (Starlette + uvicorn, written next to the suite and tuned with
it): a plain `http.server.ThreadingHTTPServer`, one thread per connection, HTTP/1.1 keep-alive,
as a small appliance-like target would be (or HTTP/1.0, a connection per request). It serves
what the seed and the vendor's API describe:

- `POST /v1/tokens` with `{"username", "password"}`: 201 and a TokenPair; anything else 401.
- every `/v1/tasks` request needs `Authorization: Bearer <accessToken>` (401 with an Error otherwise);
- `GET /v1/tasks?pageNumber=&pageSize=`: a PageOfTask (0-based pages, size 1..100, default 20);
- `GET /v1/tasks/{id}`: the Task, or 404 with an Error;
- `DELETE /v1/tasks/{id}`: 200 with no body for an IN_PROGRESS task, 404 for an unknown id, 409
  for a task in any other status. With `settle_seconds` > 0 the cancel is asynchronous: the task
  reads IN_PROGRESS for that long, then CANCELLED, and a repeat cancel meanwhile answers 200
  ("Multiple cancel requests will be treated as a single cancelation request").

Every answer waits `latency_ms` first (in its own thread, so concurrent requests overlap). The
server binds 127.0.0.1 only and logs every request (time, method, path). `keep_alive=False`
(`--http10`) answers HTTP/1.0 and closes each connection, as `http.server` does by default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

STATUSES = ("PENDING", "IN_PROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED", "COMPLETED_WITH_WARNING", "SKIPPED")
# A default run takes about eight IN_PROGRESS tasks (the scenarios and the state machine's examples).
DEFAULT_TASKS = {status: (12 if status == "IN_PROGRESS" else 2) for status in STATUSES}
MAX_BODY = 64 * 1024


@dataclass
class Task:
    id: str
    status: str
    # monotonic time of the 200 cancel, while the cancel of an asynchronous target is pending
    cancelled_at: float | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (the reference server's log has the same fields)."""

    timestamp: float  # time.monotonic() when it arrived
    method: str
    path: str  # as sent, still percent-encoded, with the query


class Store:
    """The tasks, under one lock; a pending cancel turns CANCELLED when it is read after the window."""

    def __init__(self, tasks: dict[str, int], settle_seconds: float) -> None:
        self.lock = threading.Lock()
        self.settle_seconds = settle_seconds
        self.tasks: dict[str, Task] = {}
        for status, count in tasks.items():
            for _ in range(count):
                task = Task(str(uuid.uuid4()), status)
                self.tasks[task.id] = task

    def _settle(self, task: Task) -> None:
        if task.cancelled_at is not None and time.monotonic() - task.cancelled_at >= self.settle_seconds:
            task.status, task.cancelled_at = "CANCELLED", None

    def get(self, task_id: str) -> dict[str, Any] | None:
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return None
            self._settle(task)
            return task_json(task)

    def page(self, number: int, size: int) -> dict[str, Any]:
        with self.lock:
            tasks = list(self.tasks.values())
            for task in tasks:
                self._settle(task)
            chunk = [task_json(t) for t in tasks[number * size:(number + 1) * size]]
        return {"elements": chunk, "pageMetadata": {"pageNumber": number, "pageSize": size,
                                                    "totalElements": len(tasks),
                                                    "totalPages": -(-len(tasks) // size)}}

    def cancel(self, task_id: str) -> int:
        """200, 404 or 409, and the cancel applied."""
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return 404
            self._settle(task)
            if task.cancelled_at is not None:
                return 200  # the same cancellation, still pending
            if task.status != "IN_PROGRESS":
                return 409
            if self.settle_seconds > 0:
                task.cancelled_at = time.monotonic()
            else:
                task.status = "CANCELLED"
            return 200

    def ids_by_status(self) -> dict[str, list[str]]:
        with self.lock:
            out: dict[str, list[str]] = {}
            for task in self.tasks.values():
                out.setdefault(task.status, []).append(task.id)
            return out


def task_json(task: Task) -> dict[str, Any]:
    status = "IN_PROGRESS" if task.cancelled_at is not None else task.status
    return {"id": task.id, "name": f"task {task.id[:8]}", "type": "BENCHMARK", "status": status,
            "creationTimestamp": task.created, "isCancellable": status == "IN_PROGRESS",
            "isRetryable": status == "FAILED"}


def error_json(code: str, message: str, *arguments: str) -> dict[str, Any]:
    return {"errorCode": code, "message": message, "arguments": list(arguments),
            "referenceToken": secrets.token_hex(3).upper()}


class StdlibTarget:
    """The server in a background thread: `with StdlibTarget(latency_ms=50) as t: t.base_url`."""

    def __init__(self, *, latency_ms: int = 0, settle_seconds: float = 0.0, username: str = "admin@local",
                 password: str | None = None, tasks: dict[str, int] | None = None, port: int = 0,
                 keep_alive: bool = True) -> None:
        if latency_ms < 0 or settle_seconds < 0:
            raise ValueError("latency_ms and settle_seconds must not be negative")
        self.latency = latency_ms / 1000
        # False: HTTP/1.0, one connection per request, as the standard library serves by default
        self.keep_alive = keep_alive
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.store = Store(dict(DEFAULT_TASKS if tasks is None else tasks), settle_seconds)
        self.tokens: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.delete_paths: set[str] = set()
        # every request, as it arrived (bench_run counts a run's requests from it)
        self.log: list[Request] = []
        self._count_lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="stdlib-target", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def state_document(self) -> dict[str, Any]:
        """What a client needs (`--tasks-file` reads its `tasks`): URL, credentials, task ids by status."""
        return {"base_url": self.base_url, "username": self.username, "password": self.password,
                "tasks": self.store.ids_by_status()}

    def count(self, method: str, path: str) -> None:
        with self._count_lock:
            self.counts[method] += 1
            self.log.append(Request(time.monotonic(), method, path))
            if method == "DELETE":
                self.delete_paths.add(path)

    def start(self) -> StdlibTarget:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StdlibTarget:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(target: StdlibTarget) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if target.keep_alive else "HTTP/1.0"
        server_version = "stdlib-target"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: a benchmark prints its own rows

        def _answer(self, status: int, document: Any = None) -> None:
            body = b"" if document is None else json.dumps(document).encode()
            if target.latency:
                time.sleep(target.latency)
            self.send_response(status)
            if document is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

        def _authorised(self) -> bool:
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer ") and header[7:] in target.tokens:
                return True
            self._answer(401, error_json("UNAUTHORIZED", "Missing or invalid bearer token"))
            return False

        def _route(self, method: str) -> None:
            target.count(method, self.path)
            parts = urlsplit(self.path)
            if method == "POST" and parts.path == "/v1/tokens":
                self._login()
                return
            if parts.path == "/v1/tasks" and method == "GET":
                if self._authorised():
                    self._list(parse_qs(parts.query))
                return
            if parts.path.startswith("/v1/tasks/"):
                if not self._authorised():
                    return
                task_id = unquote(parts.path[len("/v1/tasks/"):], errors="replace")
                if method == "GET":
                    task = target.store.get(task_id)
                    self._answer(200, task) if task is not None else self._not_found(task_id)
                elif method == "DELETE":
                    self._cancel(task_id)
                else:
                    self._answer(405, error_json("METHOD_NOT_ALLOWED", f"{method} is not allowed"))
                return
            self._answer(404, error_json("NOT_FOUND", "No such resource"))

        def _login(self) -> None:
            try:
                spec = json.loads(self._body() or b"null")
            except ValueError:
                spec = None
            if (not isinstance(spec, dict) or spec.get("username") != target.username
                    or spec.get("password") != target.password):
                self._answer(401, error_json("LOGIN_FAILED", "Invalid username or password"))
                return
            token = secrets.token_urlsafe(24)
            target.tokens.add(token)
            self._answer(201, {"accessToken": token, "refreshToken": {"id": secrets.token_urlsafe(24)}})

        def _list(self, query: dict[str, list[str]]) -> None:
            try:
                number = int(query.get("pageNumber", ["0"])[0])
                size = int(query.get("pageSize", ["20"])[0])
            except ValueError:
                number = size = -1
            if number < 0 or not 1 <= size <= 100:
                self._answer(400, error_json("INVALID_PAGING_PARAMETER", "pageNumber >= 0, pageSize 1..100"))
                return
            self._answer(200, target.store.page(number, size))

        def _not_found(self, task_id: str) -> None:
            self._answer(404, error_json("TA_TASK_NOT_FOUND", f"Task with ID {task_id} not found", task_id))

        def _cancel(self, task_id: str) -> None:
            status = target.store.cancel(task_id)
            if status == 200:
                self._answer(200)
            elif status == 404:
                self._not_found(task_id)
            else:
                self._answer(409, error_json("TA_TASK_CAN_NOT_BE_CANCELLED", "Task can not be cancelled. Only a "
                                             "IN_PROGRESS task can be cancelled.", task_id))

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        def do_PATCH(self) -> None:
            self._route("PATCH")

        def do_PUT(self) -> None:
            self._route("PUT")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stdlib_target", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--settle-seconds", type=float, default=0.0)
    parser.add_argument("--http10", action="store_true", help="HTTP/1.0: close the connection after each answer")
    parser.add_argument("--state-file", type=Path, help="write URL, credentials and task ids here (0600)")
    args = parser.parse_args(argv)
    try:
        target = StdlibTarget(latency_ms=args.latency_ms, settle_seconds=args.settle_seconds, port=args.port,
                              keep_alive=not args.http10)
    except (ValueError, OSError) as exc:
        print(f"stdlib_target: {exc}", file=sys.stderr)
        return 2
    with target:
        if args.state_file:
            args.state_file.touch(mode=0o600)
            args.state_file.write_text(json.dumps(target.state_document()), encoding="utf-8")
        print(f"serving on {target.base_url} (Ctrl-C ends)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

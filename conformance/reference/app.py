"""The reference SDDC Manager tasks service as a Starlette application.

Faithful by default (see FACTS.md); every defect in ``defects.DEFECTS`` is a
small branch or response transformer below, switched on by
``ReferenceConfig.defects``. Two routes are reference-only extensions that a
real SDDC Manager does NOT have, and that the suite must never rely on against
a real target:

* ``POST /reference/tasks`` with JSON ``{"status": "IN_PROGRESS", "count": 1}``
  creates fresh tasks and answers 201 ``{"ids": [...]}``;
* ``GET /reference/requests`` answers the request log as a JSON array.

Both require a bearer token like every non-token route.

Paging of ``GET /v1/tasks``: ``pageNumber`` is 0-based (default 0), ``pageSize``
defaults to 20 and must be 1..100; anything else answers 400 with an Error body
rather than being clamped, so a client never silently gets fewer tasks than it
asked for.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conformance import __version__

from .defects import validate_defect_names
from .store import (
    CANCELLABLE,
    STATUSES,
    CancelOutcome,
    CancelResult,
    RequestLog,
    RequestRecord,
    Task,
    TaskStore,
    TokenStore,
    normalize_status,
    seed_store,
)

DEFAULT_SEED_TASKS: Mapping[str, int] = MappingProxyType(
    {status: (8 if status == CANCELLABLE else 2) for status in STATUSES}
)
REFERENCE_MANAGER_ID = "5f1c0b7e-0000-4000-8000-00000000c0de"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CREATE_COUNT = 1000
SLOW_RESPONSE_SECONDS = 3.0

NOT_FOUND_CODE = "TA_TASK_NOT_FOUND"
NOT_CANCELLABLE_CODE = "TA_TASK_CAN_NOT_BE_CANCELLED"
NOT_CANCELLABLE_MESSAGE = "Task can not be cancelled. Only a IN_PROGRESS task can be cancelled."
JSON = "application/json"

_TASK_PREFIX = "/v1/tasks/"
_PLAIN_ID = re.compile(r"[A-Za-z0-9-]+")
_TOKEN_PATHS = frozenset({"/v1/tokens", "/v1/tokens/access-token/refresh", "/v1/tokens/refresh-token"})


@dataclass(frozen=True)
class ReferenceConfig:
    """How the reference server behaves; ``defects`` names entries of ``DEFECTS``."""

    username: str = "admin@local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    defects: frozenset[str] = frozenset()
    token_ttl: float = 3600.0
    seed_tasks: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SEED_TASKS)
    race_window: float = 0.05

    def __post_init__(self) -> None:
        # Frozen, so normalised values go in through object.__setattr__.
        object.__setattr__(self, "defects", validate_defect_names(self.defects))
        object.__setattr__(self, "seed_tasks", MappingProxyType(_validated_seed(self.seed_tasks)))
        if self.token_ttl <= 0:
            raise ValueError("token_ttl must be positive")
        if self.race_window < 0:
            raise ValueError("race_window must not be negative")


def _validated_seed(seed_tasks: Mapping[str, int]) -> dict[str, int]:
    seeds: dict[str, int] = {}
    for key, count in seed_tasks.items():
        status = normalize_status(key)
        if status is None:
            raise ValueError(f"unknown task status {key!r} in seed_tasks; valid: {', '.join(STATUSES)}")
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"seed_tasks[{key!r}] must be a non-negative integer")
        seeds[status] = count
    return seeds


# -- Error bodies ---------------------------------------------------------------------------------

def reference_token() -> str:
    """Six random upper-case alphanumerics, the shape real builds put in ``referenceToken``."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(6))


def error_body(code: str, message: str, arguments: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "errorCode": code,
        "arguments": list(arguments),
        "message": message,
        "referenceToken": reference_token(),
    }


def error_response(status: int, code: str, message: str, arguments: Iterable[str] = (),
                   headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(error_body(code, message, arguments), status_code=status, headers=headers)


def _nested_chain(depth: int, innermost: dict[str, Any]) -> list[dict[str, Any]]:
    """A nestedErrors array whose chain (counting the outer Error) is ``depth`` levels deep."""
    inner = innermost
    for level in range(depth - 1, 1, -1):
        inner = {"errorCode": "TA_NESTED_ERROR", "message": f"nested error {level}", "nestedErrors": [inner]}
    return [inner]


def _deep_error_text(top: Mapping[str, Any], depth: int, innermost: str) -> bytes:
    # json.dumps recurses once per level and would hit the recursion limit; string building does not.
    head = json.dumps(top)[:-1] + ', "nestedErrors": ['
    middle = '{"message": "nested error", "nestedErrors": [' * (depth - 2)
    return (head + middle + innermost + "]}" * (depth - 1)).encode()


_HUGE_BODY_BYTES = 30 * 1024 * 1024
_HUGE_CHUNK = b"a" * 65536


async def _huge_body(prefix: bytes, suffix: bytes) -> AsyncIterator[bytes]:
    filler = _HUGE_BODY_BYTES - len(prefix) - len(suffix)
    yield prefix
    while filler > 0:
        chunk = _HUGE_CHUNK if filler >= len(_HUGE_CHUNK) else _HUGE_CHUNK[:filler]
        filler -= len(chunk)
        yield chunk
    yield suffix


def _newer_build_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {
        **body,
        "label": "Task not cancelled",
        "remediationUrl": "https://docs.example.invalid/tasks",
        "notifications": [{
            "severity": "ERROR",
            "message": body.get("message", ""),
            "remediations": [{"message": "Check the task id", "link": "https://docs.example.invalid/x"}],
            "impactMessage": "The task was not cancelled",
        }],
        "context": {"component": "tasks-service", "operation": "cancelTask"},
    }


# Error-body transformers applied to the 404/409 answers of DELETE, in this order.
_BODY_TRANSFORMS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("minimal-error", lambda b: {"message": b["message"], "errorCode": b["errorCode"]}),
    ("newer-build-fields", _newer_build_fields),
    ("deep-valid-nesting", lambda b: {**b, "nestedErrors": _nested_chain(
        300, {"errorCode": "TA_NESTED_ERROR", "message": "nested error 300"})}),
    ("error-wrong-type-top", lambda b: {**b, "message": 7}),
    ("error-wrong-type-nested", lambda b: {**b, "nestedErrors": _nested_chain(
        4, {"errorCode": 123, "message": "nested error 3"})}),
    ("error-bad-cause", lambda b: {**b, "causes": [
        {"message": "ok", "type": "x"}, {"message": 7, "type": ["x"]}]}),
    ("context-not-object", lambda b: {**b, "context": "tasks-service"}),
    ("arguments-not-strings", lambda b: {**b, "arguments": [42]}),
    ("nested-errors-not-array", lambda b: {**b, "nestedErrors": {"message": "x"}}),
    ("error-null-fields", lambda b: {**b, "errorType": None, "remediationMessage": None}),
    ("error-as-array", lambda b: [b]),
)


def _error_media_type(defects: frozenset[str]) -> str:
    if "json-error-as-text-plain" in defects:
        return "text/plain"
    if "charset-content-type" in defects:
        return "application/json;charset=UTF-8"
    if "vendor-error-json" in defects:
        return "application/vnd.vmware.error+json"
    return JSON


def _hostile_not_found(defects: frozenset[str], body: dict[str, Any]) -> Response | None:
    """The hostile 404 bodies, or None when no hostile defect is on."""
    if "huge-error-body" in defects:
        prefix, suffix = b'{"errorCode": "TA_TASK_NOT_FOUND", "message": "', b'"}'
        return StreamingResponse(_huge_body(prefix, suffix), status_code=404, media_type=JSON,
                                 headers={"Content-Length": str(_HUGE_BODY_BYTES)})
    if "deep-invalid-nesting" in defects:
        text = _deep_error_text(body, 5000, '{"errorCode": 123, "message": "bottom"}')
        return Response(text, status_code=404, media_type=JSON)
    if "deep-valid-nesting-10k" in defects:
        text = _deep_error_text(body, 10_000, '{"errorCode": "TA_NESTED_ERROR", "message": "bottom"}')
        return Response(text, status_code=404, media_type=JSON)
    if "invalid-utf8-error" in defects:
        text = b'{"errorCode": "TA_TASK_NOT_FOUND", "message": "Task \xff\xfe not found"}'
        return Response(text, status_code=404, media_type=JSON)
    return None


def shaped_error(defects: frozenset[str], status: int, body: dict[str, Any]) -> Response:
    """An Error answer of DELETE /v1/tasks/{id}, transformed by whichever defects are on."""
    if status == 404:
        hostile = _hostile_not_found(defects, body)
        if hostile is not None:
            return hostile
    if "missing-error-body" in defects:
        return Response(status_code=status)
    if "plain-text-error" in defects:
        text = "Task not found" if status == 404 else "Task can not be cancelled"
        return PlainTextResponse(text, status_code=status)
    payload: Any = body
    for name, transform in _BODY_TRANSFORMS:
        if name in defects:
            payload = transform(payload)
    if "invalid-json-error" in defects:
        return Response(f'{{"errorCode": "{body["errorCode"]}",', status_code=status, media_type=JSON)
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=_error_media_type(defects))


# -- The service ----------------------------------------------------------------------------------

def _bearer_token(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _task_id_of(path: str) -> str | None:
    return path[len(_TASK_PREFIX):] if path.startswith(_TASK_PREFIX) else None


class _RequestLogMiddleware:
    """Records every request with the task's status before the request and the status answered."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        task_id = _task_id_of(scope["path"])
        status_before = self.service.store.status_of(task_id) if task_id else None
        token = _bearer_token(scope)
        authenticated = token is not None and self.service.tokens.is_valid(token)
        answered = 500  # what the client sees if the app raises before starting a response
        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True
            raw_path = scope.get("raw_path") or scope["path"].encode()
            self.service.request_log.append(RequestRecord(
                method=scope["method"],
                path=raw_path.decode("latin-1").partition("?")[0],
                task_id=task_id,
                status_code=answered,
                task_status_before=status_before,
                authenticated=authenticated,
                timestamp=arrived,
            ))

        async def recording_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body") and not recorded:
                # Log before the last byte leaves, so a client that has its answer also finds it logged.
                record()
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if not recorded:
                record()


class _AuthMiddleware:
    """Bearer-token check in front of every route except the token endpoints themselves."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _TOKEN_PATHS or self._accepted(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(401, "UNAUTHORIZED", "Missing, invalid or expired access token",
                                  headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _accepted(self, scope: Scope) -> bool:
        defects = self.service.config.defects
        if "auth-ignored" in defects:
            return True
        token = _bearer_token(scope)
        if token is None:
            return False
        return "any-bearer-accepted" in defects or self.service.tokens.is_valid(token)


class ReferenceService:
    """The state and request handlers behind one reference server."""

    def __init__(self, config: ReferenceConfig, store: TaskStore | None = None,
                 request_log: RequestLog | None = None) -> None:
        self.config = config
        self.defects = config.defects
        if store is None:
            store = TaskStore()
            seed_store(store, config.seed_tasks)
        self.store = store
        self.tokens = TokenStore(config.token_ttl)
        self.request_log = request_log if request_log is not None else RequestLog()

    # -- tokens -----------------------------------------------------------------------------------

    async def create_token(self, request: Request) -> Response:
        spec = await _json_or_none(request)
        if not (isinstance(spec, dict) and isinstance(spec.get("username"), str)
                and isinstance(spec.get("password"), str)):
            return error_response(400, "INVALID_TOKEN_CREATION_SPEC",
                                  "The body must be a JSON object with string username and password")
        user_ok = secrets.compare_digest(spec["username"].encode(), self.config.username.encode())
        password_ok = secrets.compare_digest(spec["password"].encode(), self.config.password.encode())
        if not (user_ok and password_ok):
            return error_response(401, "INVALID_CREDENTIALS", "Invalid username or password")
        access, refresh = self.tokens.issue_pair()
        return JSONResponse({"accessToken": access, "refreshToken": {"id": refresh}}, status_code=201)

    async def refresh_access_token(self, request: Request) -> Response:
        # The official client declares the output a plain string, so the token goes out as a JSON string.
        refresh = await _refresh_token_of(request)
        access = self.tokens.refresh(refresh) if refresh else None
        if access is None:
            return error_response(404, "REFRESH_TOKEN_NOT_FOUND", "Refresh token not found or invalidated")
        return JSONResponse(access)

    async def invalidate_refresh_token(self, request: Request) -> Response:
        refresh = await _refresh_token_of(request)
        if refresh:
            self.tokens.invalidate_refresh(refresh)
        return Response(status_code=200)

    # -- tasks ------------------------------------------------------------------------------------

    async def list_tasks(self, request: Request) -> Response:
        query = request.query_params
        try:
            page_number = _int_param(query, "pageNumber", 0, minimum=0)
            page_size = _int_param(query, "pageSize", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
        except ValueError as exc:
            return error_response(400, "INVALID_PAGING_PARAMETER", str(exc))
        status = query.get("taskStatus")
        canonical = normalize_status(status) if status is not None else None
        if status is not None and canonical is None:
            return error_response(400, "INVALID_TASK_STATUS", f"Invalid task status {status}", [status])
        tasks = self.store.list(status=canonical, type_=query.get("taskType"), name=query.get("taskName"))
        page = tasks[page_number * page_size:(page_number + 1) * page_size]
        return JSONResponse({
            "elements": [self._task_json(task) for task in page],
            "pageMetadata": {
                "pageNumber": page_number,
                "pageSize": page_size,
                "totalElements": len(tasks),
                "totalPages": math.ceil(len(tasks) / page_size),
            },
        })

    async def list_sddc_managers(self, request: Request) -> Response:
        # Like a real appliance, this tells the product version a report can name.
        manager = {
            "id": REFERENCE_MANAGER_ID,
            "fqdn": request.url.hostname or "127.0.0.1",
            "version": f"{__version__}-reference",
        }
        return JSONResponse({
            "elements": [manager],
            "pageMetadata": {"pageNumber": 0, "pageSize": 1, "totalElements": 1, "totalPages": 1},
        })

    async def task(self, request: Request) -> Response:
        # One route for both methods, so that a 405 lists every allowed method in its Allow header.
        if request.method == "DELETE":
            return await self.cancel_task(request)
        return await self.get_task(request)

    async def get_task(self, request: Request) -> Response:
        task_id = request.path_params["id"]
        task = self.store.get(task_id)
        if task is None:
            return error_response(404, NOT_FOUND_CODE, f"Task with ID {task_id} not found", [task_id])
        return JSONResponse(self._task_json(task))

    async def cancel_task(self, request: Request) -> Response:
        task_id: str = request.path_params["id"]
        if "slow-responses" in self.defects:
            await asyncio.sleep(SLOW_RESPONSE_SECONDS)
        redirect = self._redirect(request)
        if redirect is not None:
            return redirect
        if "redirect-cancel" in self.defects:
            task_id = task_id.removesuffix("/")  # the canonical URL the 307 pointed to
        if "odd-id-400" in self.defects and not _PLAIN_ID.fullmatch(task_id):
            return error_response(400, "TA_INVALID_TASK_ID", f"Invalid task ID {task_id}", [task_id])
        result = await self._cancel(task_id)
        if result.outcome is CancelOutcome.NOT_FOUND:
            return self._unknown_task(task_id)
        if result.outcome is CancelOutcome.NOT_CANCELLABLE:
            return shaped_error(self.defects, 409, error_body(
                NOT_CANCELLABLE_CODE, NOT_CANCELLABLE_MESSAGE, [task_id]))
        self._after_cancel(task_id, result)
        return self._cancelled(result.task)

    async def _cancel(self, task_id: str) -> CancelResult:
        cancellable = {CANCELLABLE}
        if "cancel-finished-task" in self.defects:
            cancellable |= {"SUCCESSFUL", "FAILED", "COMPLETED_WITH_WARNING", "SKIPPED"}
        if "pending-cancellable" in self.defects:
            cancellable.add("PENDING")
        if "recancel-200" in self.defects:
            cancellable.add("CANCELLED")
        if "racing-cancels" not in self.defects:
            return self.store.cancel(task_id, cancellable=cancellable,
                                     apply="cancel-not-applied" not in self.defects)
        # The defect: check, yield to other requests, then set -- a classic check-then-act race.
        before = self.store.status_of(task_id)
        if before is None:
            return CancelResult(CancelOutcome.NOT_FOUND, None)
        if before not in cancellable:
            return CancelResult(CancelOutcome.NOT_CANCELLABLE, before)
        await asyncio.sleep(self.config.race_window)
        return CancelResult(CancelOutcome.CANCELLED, before, self.store.force_cancel(task_id))

    def _after_cancel(self, task_id: str, result: CancelResult) -> None:
        if "forget-cancelled" in self.defects:
            self.store.remove(task_id)
        if "cancel-wrong-task" in self.defects and result.previous_status == CANCELLABLE:
            self.store.cancel_next_in_progress(task_id)

    def _cancelled(self, task: Task | None) -> Response:
        if "success-with-body" in self.defects and task is not None:
            return JSONResponse(task.to_json())
        if "wrong-success-status" in self.defects:
            return Response(status_code=204)
        if "accepted-202" in self.defects:
            return Response(status_code=202)
        # No body and no Content-Type, as the documentation says ("doesn't return any data structure").
        return Response(status_code=200)

    def _unknown_task(self, task_id: str) -> Response:
        if "html-500" in self.defects:
            return HTMLResponse("<html><head><title>Error</title></head><body><h1>HTTP Status 500 - "
                                "Internal Server Error</h1></body></html>", status_code=500)
        if "unknown-id-500" in self.defects:
            return error_response(500, "TA_UNEXPECTED_ERROR", "Unexpected error", [task_id])
        if "unknown-id-200" in self.defects:
            return Response(status_code=200)
        if "unknown-id-409" in self.defects:
            return shaped_error(self.defects, 409, error_body(
                NOT_CANCELLABLE_CODE, NOT_CANCELLABLE_MESSAGE, [task_id]))
        return shaped_error(self.defects, 404, error_body(
            NOT_FOUND_CODE, f"Task with ID {task_id} not found", [task_id]))

    def _redirect(self, request: Request) -> Response | None:
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        if "redirect-other-host" in self.defects:
            port = request.scope["server"][1]
            path = raw_path.partition("?")[0]
            return Response(status_code=302,
                            headers={"Location": f"{request.url.scheme}://127.0.0.2:{port}{path}"})
        if "redirect-cancel" in self.defects and not raw_path.partition("?")[0].endswith("/"):
            path, _, query = raw_path.partition("?")
            location = str(request.base_url).rstrip("/") + path + "/" + (f"?{query}" if query else "")
            return Response(status_code=307, headers={"Location": location})
        return None

    def _task_json(self, task: Task) -> dict[str, Any]:
        return task.to_json(title_case="title-case-status" in self.defects)

    # -- reference-only extensions (not part of the SDDC Manager API) -----------------------------

    async def create_reference_tasks(self, request: Request) -> Response:
        spec = await _json_or_none(request)
        spec = {} if spec is None and not await request.body() else spec
        if not isinstance(spec, dict):
            return error_response(400, "INVALID_REQUEST", "The body must be a JSON object")
        status = normalize_status(str(spec.get("status", CANCELLABLE)))
        count = spec.get("count", 1)
        if status is None:
            return error_response(400, "INVALID_TASK_STATUS", f"status must be one of {', '.join(STATUSES)}")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CREATE_COUNT:
            return error_response(400, "INVALID_COUNT", f"count must be an integer in 1..{MAX_CREATE_COUNT}")
        return JSONResponse({"ids": self.store.create_many(status, count)}, status_code=201)

    async def list_requests(self, request: Request) -> Response:
        return JSONResponse([record.to_json() for record in self.request_log.snapshot()])

    # -- errors -----------------------------------------------------------------------------------

    async def http_error(self, request: Request, exc: Exception) -> Response:
        # Starlette answers unmatched routes and methods in plain text; the API always answers Error JSON.
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, "NOT_FOUND", f"No resource at {request.url.path}", [request.url.path])
        if exc.status_code == 405:
            return error_response(405, "METHOD_NOT_ALLOWED", f"Method {request.method} is not allowed",
                                  [request.method], headers=exc.headers)
        return error_response(exc.status_code, "HTTP_ERROR", exc.detail, headers=exc.headers)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return error_response(500, "UNEXPECTED_ERROR", "Unexpected error")


async def _json_or_none(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:  # also covers invalid UTF-8
        return None


async def _refresh_token_of(request: Request) -> str:
    """The refresh token id, sent as a JSON string (the official client) or as raw text."""
    raw = await request.body()
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()
    if isinstance(value, dict):  # tolerate {"id": "..."} like the TokenPair's refreshToken
        value = value.get("id", "")
    return value if isinstance(value, str) else ""


def _int_param(query: Mapping[str, str], name: str, default: int, *, minimum: int,
               maximum: int | None = None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f"..{maximum}" if maximum is not None else " or more"
        raise ValueError(f"{name} must be {minimum}{upper}")
    return value


def create_app(config: ReferenceConfig | None = None, *, store: TaskStore | None = None,
               request_log: RequestLog | None = None) -> Starlette:
    """Build the ASGI app; ``app.state.service`` gives access to its store, tokens and log."""
    service = ReferenceService(config or ReferenceConfig(), store, request_log)
    routes = [
        Route("/v1/tokens", service.create_token, methods=["POST"]),
        Route("/v1/tokens/access-token/refresh", service.refresh_access_token, methods=["PATCH"]),
        Route("/v1/tokens/refresh-token", service.invalidate_refresh_token, methods=["DELETE"]),
        Route("/v1/tasks", service.list_tasks, methods=["GET"]),
        Route("/v1/sddc-managers", service.list_sddc_managers, methods=["GET"]),
        # {id:path}: Starlette has already decoded %2F to '/', and any string must reach the handler.
        Route("/v1/tasks/{id:path}", service.task, methods=["GET", "DELETE"]),
        Route("/reference/tasks", service.create_reference_tasks, methods=["POST"]),
        Route("/reference/requests", service.list_requests, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_RequestLogMiddleware, service=service),
                    Middleware(_AuthMiddleware, service=service)],
        exception_handlers={HTTPException: service.http_error, Exception: service.server_error},
    )
    # Slash redirects would answer undocumented 307s for e.g. /v1/tasks/ instead of a 404 Error.
    app.router.redirect_slashes = False
    app.state.service = service
    return app

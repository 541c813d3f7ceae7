"""The reference SDDC Manager tasks service as a Starlette application.

Faithful by default (see docs/SOURCES.md); every defect in ``defects.DEFECTS`` is a
small branch or response transformer below, switched on by
``ReferenceConfig.defects``. Two routes are reference-only extensions that a
real SDDC Manager does NOT have, and that the suite must never rely on against
a real target:

* ``POST /reference/tasks`` with JSON ``{"status": "IN_PROGRESS", "count": 1}``
  creates fresh tasks and answers 201 ``{"ids": [...]}``;
* ``GET /reference/requests?offset=0&limit=1000`` answers a page of the request log:
  ``{"total", "offset", "limit", "next_offset", "evicted", "capacity", "records": [...]}``.
  Offsets count the records the ring buffer still holds, oldest first (``total`` of them, at most
  ``capacity`` = ``ReferenceConfig.request_log_size``); ``evicted`` counts records pushed out;
  ``next_offset`` is null on the last page; ``limit`` is 1..1000.

Both require a bearer token like every non-token route.

Bounds (a CI gate may face hostile clients): the request log is a ring buffer; at most
``max_tokens`` access and refresh tokens live (expired ones purged, oldest evicted); POST
/reference/tasks stops at ``max_tasks`` tasks in the store (409); request bodies over
``max_body_bytes`` answer 413 (Content-Length checked up front, streamed bodies cut off at the cap);
JSON bodies deeper than ``max_json_depth``, malformed, not UTF-8 or holding lone surrogates answer
400; logins beyond ``login_rate`` a second per client IP (burst ``login_burst``) answer 429 with
Retry-After. Every such answer carries an Error body.

Servlet URL hygiene (variation ``servlet-url-hygiene``, see ``servlet_firewall_status``): the rule
works on the raw, still percent-encoded request path (the ASGI ``raw_path``, after any
``path_prefix``, without the query). A path longer than 4096 bytes answers 414. A path under
``/v1/tasks/`` answers 400 with a text/html page when the part after ``/v1/tasks`` contains any of:
``%2F`` ``%5C`` ``%25`` ``%2E`` ``%3B`` (either case of hex), any encoded control character ``%00``-``%1F``
or ``%7F``, a raw control character, ``;`` or backslash, the sequence ``//``, a segment that is exactly ``.``
or ``..``, or a ``%`` not followed by two hex digits. Everything else (``%20``, encoded unicode,
``! $ & ' ( ) * + , = : @ ~ _``) reaches the API unchanged.

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

from .defects import task_id_kind, validate_defect_names
from .store import (
    CANCELLABLE,
    DEFAULT_REQUEST_LOG_SIZE,
    LOOKUPS,
    STATUSES,
    CancelOutcome,
    CancelResult,
    RateLimiter,
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
MAX_REQUESTS_PAGE = 1000
CHANGES_AFTER_SECONDS = 1.5  # changes-after-read: a cancelled task turns FAILED this long after the cancel
CHANGES_AFTER_READS = 2  # ... or once it has been read CANCELLED this many times
NON_CANCELLABLE_COUNT = 2  # non-cancellable-in-progress: this many IN_PROGRESS tasks refuse a cancel
SERVLET_MAX_PATH = 4096
# non-uuid-task-ids: (id, status) of the tasks left out of the handed-over pool, listed first.
UNPOOLED_TASKS: tuple[tuple[str, str], ...] = (
    ("0", "IN_PROGRESS"),
    ("a", "IN_PROGRESS"),
    ("%", "IN_PROGRESS"),
    ("a b", "IN_PROGRESS"),
    ("..", "SUCCESSFUL"),
    ("-", "FAILED"),
)

NOT_FOUND_CODE = "TA_TASK_NOT_FOUND"
NOT_CANCELLABLE_CODE = "TA_TASK_CAN_NOT_BE_CANCELLED"
NOT_CANCELLABLE_MESSAGE = "Task can not be cancelled. Only a IN_PROGRESS task can be cancelled."
JSON = "application/json"

_TASK_PREFIX = "/v1/tasks/"
_PLAIN_ID = re.compile(r"[A-Za-z0-9-]+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")
_TOKEN_PATHS = frozenset({"/v1/tokens", "/v1/tokens/access-token/refresh", "/v1/tokens/refresh-token"})


@dataclass(frozen=True)
class ReferenceConfig:
    """How the reference server behaves; ``defects`` names entries of ``DEFECTS``."""

    username: str = "admin@local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    defects: frozenset[str] = frozenset()
    token_ttl: float = 3600.0
    # Requests an access token is accepted for before it expires (None: only token_ttl counts);
    # 0 refuses every token at once. Imitates appliances whose tokens outlive few requests.
    token_lifetime_requests: int | None = None
    seed_tasks: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SEED_TASKS)
    race_window: float = 0.05
    # Every answer waits this long (asynchronously, so concurrent requests overlap).
    latency_ms: int = 0
    # Mount every route under this path, e.g. "/sddc-api"; requests outside it answer 404.
    path_prefix: str = ""
    # async-cancel-* variations: how long a cancelled task keeps reading IN_PROGRESS.
    settle_seconds: float = 1.0
    # backpressure-429 variation: requests a second per client IP, and how many may come at once.
    # A default run (~650 requests) that waits out each Retry-After meets 429 some 50 times and
    # takes about 17 s (the pace the limit allows), against ~8 s without the limit.
    backpressure_rate: float = 40.0
    backpressure_burst: int = 50
    # Bounds.
    request_log_size: int = DEFAULT_REQUEST_LOG_SIZE
    max_tokens: int = 1000
    max_tasks: int = 10_000
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 64
    login_rate: float = 10.0
    login_burst: int = 20
    # The errorCode of a 404 (unknown task) and of a 409 (not cancellable): `serve --like` takes a
    # recorded build's spelling on.
    not_found_code: str = NOT_FOUND_CODE
    not_cancellable_code: str = NOT_CANCELLABLE_CODE

    def __post_init__(self) -> None:
        # Frozen, so normalised values go in through object.__setattr__.
        object.__setattr__(self, "defects", validate_defect_names(self.defects))
        task_id_kind(self.defects)  # defects that need different kinds of task id cannot be combined
        object.__setattr__(self, "seed_tasks", MappingProxyType(_validated_seed(self.seed_tasks)))
        if self.token_ttl <= 0:
            raise ValueError("token_ttl must be positive")
        if self.race_window < 0:
            raise ValueError("race_window must not be negative")
        _check_int("latency_ms", self.latency_ms, 0)
        if not isinstance(self.path_prefix, str) or not _PREFIX.fullmatch(self.path_prefix) or any(
                part in (".", "..") for part in self.path_prefix.split("/")):
            raise ValueError("path_prefix must be empty or like /sddc-api: '/'-led segments of "
                             "A-Z a-z 0-9 . _ ~ -, no trailing '/', no '.' or '..' segments")
        _check_float("settle_seconds", self.settle_seconds, allow_zero=True)
        _check_float("backpressure_rate", self.backpressure_rate)
        _check_int("backpressure_burst", self.backpressure_burst, 1)
        _check_int("request_log_size", self.request_log_size, 1)
        _check_int("max_tokens", self.max_tokens, 1)
        if self.token_lifetime_requests is not None:
            _check_int("token_lifetime_requests", self.token_lifetime_requests, 0)
        _check_int("max_tasks", self.max_tasks, 1)
        _check_int("max_body_bytes", self.max_body_bytes, 1)
        _check_int("max_json_depth", self.max_json_depth, 1)
        _check_float("login_rate", self.login_rate)
        _check_int("login_burst", self.login_burst, 1)
        if sum(self.seed_tasks.values()) + len(UNPOOLED_TASKS) > self.max_tasks:
            raise ValueError("seed_tasks hold more tasks than max_tasks allows")


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}")


def _check_float(name: str, value: object, *, allow_zero: bool = False) -> None:
    if (not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value)
            or value < 0 or (value == 0 and not allow_zero)):
        raise ValueError(f"{name} must be a finite {'non-negative' if allow_zero else 'positive'} number")


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


def _under_prefix(path: str, prefix: str) -> str | None:
    """``path`` with ``prefix`` taken off, or None when the path lies outside the prefix."""
    if not prefix:
        return path
    return path[len(prefix):] if path.startswith(prefix + "/") else None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_FORBIDDEN_ESCAPE = re.compile(rb"%(?:2[Ff]|5[Cc]|25|2[Ee]|3[Bb]|[01][0-9A-Fa-f]|7[Ff])")
_FORBIDDEN_RAW = re.compile(rb"[\x00-\x1f\x7f;\\]")


def servlet_firewall_status(raw_path: bytes) -> int | None:
    """What a Tomcat + Spring Security StrictHttpFirewall + nginx front answers before the API
    sees ``raw_path`` (percent-encoded, without the query): 414, 400, or None to let it through.
    The rule is spelled out in the module docstring."""
    if len(raw_path) > SERVLET_MAX_PATH:
        return 414
    if not raw_path.startswith(_TASK_PREFIX.encode()):
        return None
    tail = raw_path[len(_TASK_PREFIX) - 1:]  # keeps the slash before the id, so "/v1/tasks//x" shows "//"
    if (_MALFORMED_ESCAPE.search(tail) or _FORBIDDEN_ESCAPE.search(tail) or _FORBIDDEN_RAW.search(tail)
            or b"//" in tail or any(segment in (b".", b"..") for segment in tail.split(b"/"))):
        return 400
    return None


_SERVLET_TITLES = {400: "Bad Request", 414: "URI Too Long"}


def _servlet_error_page(status: int) -> Response:
    title = f"HTTP Status {status} – {_SERVLET_TITLES[status]}"
    return HTMLResponse(f'<!doctype html><html lang="en"><head><title>{title}</title></head>'
                        f"<body><h1>{title}</h1><hr><h3>Apache Tomcat</h3></body></html>", status_code=status)


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
        route_path = _under_prefix(scope["path"], self.service.config.path_prefix)
        task_id = _task_id_of(route_path) if route_path is not None else None
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
            if message["type"] == "http.response.start" and not recorded:
                # Log before the status line leaves, so a client that has its answer also finds it logged
                # (uvicorn writes the headers now, and a Content-Length: 0 answer is complete with them).
                answered = message["status"]
                record()
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if not recorded:
                record()


class _LatencyMiddleware:
    """Waits ``latency_ms`` before every answer and counts the requests in flight."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = self.service
        service.in_flight += 1
        service.peak_in_flight = max(service.peak_in_flight, service.in_flight)
        try:
            if service.config.latency_ms:
                await asyncio.sleep(service.config.latency_ms / 1000)
            await self.app(scope, receive, send)
        finally:
            service.in_flight -= 1


class _PrefixMiddleware:
    """Serves the API under ``path_prefix`` only: strips it, and answers 404 outside it."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.prefix = service.config.path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.prefix:
            await self.app(scope, receive, send)
            return
        path = _under_prefix(scope["path"], self.prefix)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if path is None or not raw_path.startswith(self.prefix.encode() + b"/"):
            response = error_response(404, "NOT_FOUND", f"No resource at {scope['path']}", [scope["path"]])
            await response(scope, receive, send)
            return
        await self.app({**scope, "path": path, "raw_path": raw_path[len(self.prefix):]}, receive, send)


class _BodyLimitMiddleware:
    """413 up front for any request whose Content-Length exceeds ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.limit = service.config.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == b"content-length" and value.strip().isdigit() and int(value) > self.limit:
                    response = error_response(413, "PAYLOAD_TOO_LARGE",
                                              f"Request bodies are limited to {self.limit} bytes")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class _BackpressureMiddleware:
    """The backpressure-429 variation: a rate-limiting gateway in front of every route."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.service.backpressure
        if scope["type"] == "http" and limiter is not None and limiter.acquire(_client_ip(scope)) > 0:
            response = PlainTextResponse("429 Too Many Requests: slow down\n", status_code=429,
                                         headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _ServletFirewallMiddleware:
    """The servlet-url-hygiene variation: 400/414 HTML pages for paths a servlet stack refuses."""

    def __init__(self, app: ASGIApp, service: ReferenceService) -> None:
        self.app = app
        self.enabled = "servlet-url-hygiene" in service.config.defects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.enabled:
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            status = servlet_firewall_status(raw_path.partition(b"?")[0])
            if status is not None:
                await _servlet_error_page(status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
        return "any-bearer-accepted" in defects or self.service.tokens.use(token)


class BodyRejected(Exception):
    """A request body the service refuses; answered as an Error with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, streamed and refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyRejected(413, "PAYLOAD_TOO_LARGE", f"Request bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRejected(413, "PAYLOAD_TOO_LARGE", f"Request bodies are limited to {limit} bytes")
    return bytes(body)


_JSON_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text``, counted without parsing it."""
    depth = deepest = 0
    for match in _JSON_STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_surrogate(key) or _has_surrogate(item) for key, item in value.items())
    return False


def parse_json(raw: bytes, max_depth: int) -> Any:
    """Strict UTF-8 JSON no deeper than ``max_depth`` and without lone surrogates, else BodyRejected(400)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRejected(400, "INVALID_JSON", "The body is not UTF-8") from None
    if json_depth(text) > max_depth:
        raise BodyRejected(400, "INVALID_JSON", f"The body nests deeper than {max_depth} levels")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BodyRejected(400, "INVALID_JSON", "The body is not valid JSON") from None
    if _has_surrogate(value):
        raise BodyRejected(400, "INVALID_JSON", "The body holds a lone UTF-16 surrogate")
    return value


class ReferenceService:
    """The state and request handlers behind one reference server."""

    def __init__(self, config: ReferenceConfig, store: TaskStore | None = None,
                 request_log: RequestLog | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.defects = config.defects
        self.clock = clock
        if store is None:
            store = TaskStore(clock, id_kind=task_id_kind(self.defects))
            if "non-uuid-task-ids" in self.defects:
                self._create_unpooled(store)  # first, so they lead the listing
            seed_store(store, config.seed_tasks)
        elif "non-uuid-task-ids" in self.defects:
            self._create_unpooled(store)
        self.store = store
        self.tokens = TokenStore(config.token_ttl, clock, max_tokens=config.max_tokens,
                                 max_uses=config.token_lifetime_requests)
        self.request_log = (request_log if request_log is not None
                            else RequestLog(maxlen=config.request_log_size))
        self.logins = RateLimiter(config.login_rate, config.login_burst, clock)
        self.backpressure = (RateLimiter(config.backpressure_rate, config.backpressure_burst, clock)
                             if "backpressure-429" in self.defects else None)
        self.in_flight = 0
        self.peak_in_flight = 0
        in_progress = [task.id for task in store.list(status=CANCELLABLE)]
        # non-cancellable-in-progress: the first IN_PROGRESS tasks in listing order refuse a cancel.
        self.uncancellable: frozenset[str] = (frozenset(in_progress[:NON_CANCELLABLE_COUNT])
                                              if "non-cancellable-in-progress" in self.defects else frozenset())
        # task-finishes-before-use: the first IN_PROGRESS task of the handed-over pool.
        pooled = store.ids_by_status()[CANCELLABLE]
        self.finishes_on_read: str | None = (pooled[0] if pooled and "task-finishes-before-use" in self.defects
                                             else None)
        self._cancelled_reads: dict[str, int] = {}  # changes-after-read: reads of CANCELLED so far
        self._racing: dict[str, int] = {}  # race-* defects: cancels of a task in flight
        self._contended: set[str] = set()  # ... and the tasks whose cancels overlapped

    @staticmethod
    def _create_unpooled(store: TaskStore) -> None:
        for task_id, status in UNPOOLED_TASKS:
            store.create(status, task_id=task_id, pooled=False)

    async def _json_body(self, request: Request) -> Any:
        return parse_json(await read_body(request, self.config.max_body_bytes), self.config.max_json_depth)

    # -- tokens -----------------------------------------------------------------------------------

    async def create_token(self, request: Request) -> Response:
        wait = self.logins.acquire(_client_ip(request.scope))
        if wait > 0:
            return error_response(429, "TOO_MANY_LOGINS", "Too many logins from this address; retry later",
                                  headers={"Retry-After": RateLimiter.retry_after(wait)})
        spec = await self._json_body(request)
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
        refresh = await self._refresh_token_of(request)
        access = self.tokens.refresh(refresh) if refresh else None
        if access is None:
            return error_response(404, "REFRESH_TOKEN_NOT_FOUND", "Refresh token not found or invalidated")
        return JSONResponse(access)

    async def invalidate_refresh_token(self, request: Request) -> Response:
        refresh = await self._refresh_token_of(request)
        if refresh:
            self.tokens.invalidate_refresh(refresh)
        return Response(status_code=200)

    async def _refresh_token_of(self, request: Request) -> str:
        """The refresh token id, sent as a JSON string (the official client) or as raw text."""
        raw = await read_body(request, self.config.max_body_bytes)
        try:
            value = parse_json(raw, self.config.max_json_depth)
        except BodyRejected:
            return raw.decode("utf-8", "replace").strip()
        if isinstance(value, dict):  # tolerate {"id": "..."} like the TokenPair's refreshToken
            value = value.get("id", "")
        return value if isinstance(value, str) else ""

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

    def _resolve(self, task_id: str) -> str:
        if "partial-match-ids" in self.defects:
            return self.store.resolve_loosely(task_id) or task_id
        # The identity defects (and the uuid-case-insensitive-ids variation): one sloppy lookup each.
        for lookup in sorted(self.defects & LOOKUPS.keys()):
            found = self.store.resolve_as(task_id, lookup)
            if found is not None:
                return found
        return task_id

    async def get_task(self, request: Request) -> Response:
        task_id = request.path_params["id"]
        task = self.store.get(self._resolve(task_id))
        if task is None:
            return error_response(404, self.config.not_found_code, f"Task with ID {task_id} not found", [task_id])
        response = JSONResponse(self._task_json(task))
        self._after_read(task)
        return response

    def _after_read(self, task: Task) -> None:
        if task.id == self.finishes_on_read and task.status == CANCELLABLE:
            self.finishes_on_read = None
            self.store.set_status(task.id, "SUCCESSFUL")
        reads = self._cancelled_reads.get(task.id)
        if reads is not None and task.status == "CANCELLED":
            if reads + 1 >= CHANGES_AFTER_READS:
                del self._cancelled_reads[task.id]
                self.store.set_status(task.id, "FAILED")
            else:
                self._cancelled_reads[task.id] = reads + 1

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
        if "reserved-char-500" in self.defects and "!" in task_id:
            return error_response(500, "TA_UNEXPECTED_ERROR", "Unexpected error", [task_id])
        outcome = await self._cancel(self._resolve(task_id))
        if isinstance(outcome, Response):
            return outcome
        result = outcome
        if result.outcome is CancelOutcome.NOT_FOUND:
            return self._unknown_task(task_id)
        if result.outcome is CancelOutcome.ALREADY_PENDING and "async-cancel-repeat-409" not in self.defects:
            return self._cancelled(result.task)
        if result.outcome is not CancelOutcome.CANCELLED:
            self._after_refusal(result)
            return self._not_cancellable(task_id)
        self._after_cancel(result)
        return self._cancelled(result.task)

    def _not_cancellable(self, task_id: str) -> Response:
        return shaped_error(self.defects, 409, error_body(self.config.not_cancellable_code, NOT_CANCELLABLE_MESSAGE,
                                                          [task_id]))

    async def _cancel(self, task_id: str) -> CancelResult | Response:
        cancellable = {CANCELLABLE}
        if "cancel-finished-task" in self.defects:
            cancellable |= {"SUCCESSFUL", "FAILED", "COMPLETED_WITH_WARNING", "SKIPPED"}
        if "pending-cancellable" in self.defects:
            cancellable.add("PENDING")
        if "recancel-200" in self.defects:
            cancellable.add("CANCELLED")
        if task_id in self.uncancellable:
            status = self.store.status_of(task_id)
            if status is not None:
                return CancelResult(CancelOutcome.NOT_CANCELLABLE, status, self.store.get(task_id))
        if "racing-cancels" in self.defects:
            # The defect: check, yield to other requests, then set -- a classic check-then-act race.
            before = self.store.status_of(task_id)
            if before is None:
                return CancelResult(CancelOutcome.NOT_FOUND, None)
            if before not in cancellable:
                return CancelResult(CancelOutcome.NOT_CANCELLABLE, before)
            await asyncio.sleep(self.config.race_window)
            return CancelResult(CancelOutcome.CANCELLED, before, self.store.force_cancel(task_id))
        if "race-zero-winners" in self.defects or "race-404-losers" in self.defects:
            return await self._contended_cancel(task_id, cancellable)
        return self.store.cancel(task_id, cancellable=cancellable, apply="cancel-not-applied" not in self.defects,
                                 settle_after=self._settle_after())

    def _settle_after(self) -> float | None:
        if "cancel-never-settles" in self.defects:
            return math.inf
        if "async-cancel-repeat-200" in self.defects or "async-cancel-repeat-409" in self.defects:
            return self.config.settle_seconds
        return None

    async def _contended_cancel(self, task_id: str, cancellable: set[str]) -> CancelResult | Response:
        """The race-* defects: hold every cancel of an IN_PROGRESS task for ``race_window`` and see
        which overlapped."""
        before = self.store.status_of(task_id)
        if before != CANCELLABLE:
            return self.store.cancel(task_id, cancellable=cancellable)
        self._racing[task_id] = self._racing.get(task_id, 0) + 1
        if self._racing[task_id] > 1:
            self._contended.add(task_id)
        try:
            await asyncio.sleep(self.config.race_window)
            contended = task_id in self._contended
        finally:
            self._racing[task_id] -= 1
            if not self._racing[task_id]:
                del self._racing[task_id]
                self._contended.discard(task_id)
        if contended and "race-zero-winners" in self.defects:
            self.store.force_cancel(task_id)
            return self._not_cancellable(task_id)
        result = self.store.cancel(task_id, cancellable=cancellable)
        if result.outcome is CancelOutcome.NOT_CANCELLABLE and "race-404-losers" in self.defects:
            return self._unknown_task(task_id)  # lost to a cancel that overlapped this one
        return result

    def _after_refusal(self, result: CancelResult) -> None:
        task = result.task
        if task is None:
            return
        if "refused-cancel-changes-task" in self.defects and result.previous_status != "CANCELLED":
            self.store.force_cancel(task.id)
        if "vanish-after-409" in self.defects:
            self.store.remove(task.id)

    def _after_cancel(self, result: CancelResult) -> None:
        task = result.task
        if task is None:
            return
        if "forget-cancelled" in self.defects:
            self.store.remove(task.id)
        if "cancel-wrong-task" in self.defects and result.previous_status == CANCELLABLE:
            self.store.cancel_next_in_progress(task.id)
        if "changes-after-read" in self.defects:
            self._cancelled_reads[task.id] = 0
            self.store.schedule(task.id, "FAILED", CHANGES_AFTER_SECONDS)

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
            return self._not_cancellable(task_id)
        if "unknown-uuid-400" in self.defects and _UUID.fullmatch(task_id):
            return error_response(400, "TA_INVALID_TASK_ID", f"Invalid task ID {task_id}", [task_id])
        if "generated-204" in self.defects and not _UUID.fullmatch(task_id):
            return Response(status_code=204)
        return shaped_error(self.defects, 404, error_body(
            self.config.not_found_code, f"Task with ID {task_id} not found", [task_id]))

    def _redirect(self, request: Request) -> Response | None:
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        prefix = self.config.path_prefix
        if "redirect-other-host" in self.defects:
            port = request.scope["server"][1]
            path = raw_path.partition("?")[0]
            return Response(status_code=302,
                            headers={"Location": f"{request.url.scheme}://127.0.0.2:{port}{prefix}{path}"})
        if "redirect-cancel" in self.defects and not raw_path.partition("?")[0].endswith("/"):
            path, _, query = raw_path.partition("?")
            location = str(request.base_url).rstrip("/") + prefix + path + "/" + (f"?{query}" if query else "")
            return Response(status_code=307, headers={"Location": location})
        return None

    def _task_json(self, task: Task) -> dict[str, Any]:
        cancellable = task.status == CANCELLABLE and task.id not in self.uncancellable
        return task.to_json(title_case="title-case-status" in self.defects, cancellable=cancellable)

    # -- reference-only extensions (not part of the SDDC Manager API) -----------------------------

    async def create_reference_tasks(self, request: Request) -> Response:
        raw = await read_body(request, self.config.max_body_bytes)
        spec = parse_json(raw, self.config.max_json_depth) if raw.strip() else {}
        if not isinstance(spec, dict):
            return error_response(400, "INVALID_REQUEST", "The body must be a JSON object")
        status = normalize_status(str(spec.get("status", CANCELLABLE)))
        count = spec.get("count", 1)
        if status is None:
            return error_response(400, "INVALID_TASK_STATUS", f"status must be one of {', '.join(STATUSES)}")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_CREATE_COUNT:
            return error_response(400, "INVALID_COUNT", f"count must be an integer in 1..{MAX_CREATE_COUNT}")
        if len(self.store) + count > self.config.max_tasks:
            return error_response(409, "TASK_LIMIT_REACHED",
                                  f"The store holds {len(self.store)} of at most {self.config.max_tasks} tasks",
                                  [str(self.config.max_tasks)])
        return JSONResponse({"ids": self.store.create_many(status, count)}, status_code=201)

    async def list_requests(self, request: Request) -> Response:
        try:
            offset = _int_param(request.query_params, "offset", 0, minimum=0)
            limit = _int_param(request.query_params, "limit", MAX_REQUESTS_PAGE, minimum=1,
                               maximum=MAX_REQUESTS_PAGE)
        except ValueError as exc:
            return error_response(400, "INVALID_PAGING_PARAMETER", str(exc))
        log = self.request_log
        total = len(log)
        page = log.snapshot(offset, limit)
        end = offset + len(page)
        return JSONResponse({
            "total": total,
            "offset": offset,
            "limit": limit,
            "next_offset": end if end < total else None,
            "evicted": log.evicted,
            "capacity": log.maxlen,
            "records": [record.to_json() for record in page],
        })

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

    async def body_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyRejected)
        return error_response(exc.status, exc.code, exc.message)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return error_response(500, "UNEXPECTED_ERROR", "Unexpected error")


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
               request_log: RequestLog | None = None, clock: Callable[[], float] = time.monotonic) -> Starlette:
    """Build the ASGI app; ``app.state.service`` gives access to its store, tokens and log.

    ``clock`` (monotonic seconds) drives token expiry, rate limits and delayed task changes, so
    tests can move time on without waiting.
    """
    service = ReferenceService(config or ReferenceConfig(), store, request_log, clock)
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
    # Outermost first: everything is logged; the gateway and servlet layers answer before auth.
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_RequestLogMiddleware, service=service),
                    Middleware(_LatencyMiddleware, service=service),
                    Middleware(_PrefixMiddleware, service=service),
                    Middleware(_BodyLimitMiddleware, service=service),
                    Middleware(_BackpressureMiddleware, service=service),
                    Middleware(_ServletFirewallMiddleware, service=service),
                    Middleware(_AuthMiddleware, service=service)],
        exception_handlers={HTTPException: service.http_error, BodyRejected: service.body_error,
                            Exception: service.server_error},
    )
    # Slash redirects would answer undocumented 307s for e.g. /v1/tasks/ instead of a 404 Error.
    app.router.redirect_slashes = False
    app.state.service = service
    return app

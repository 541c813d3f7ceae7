"""What the target *did*, by id class and task status: the behaviour profile, and the recording.

Every exchange of a run passes through `BehaviourObserver.observe` (the Target calls it), in the
order the answers came back. The observer keeps aggregates only (a profile never holds an id, a
token or a reference token), plus, for the HAR recording, a copy of each exchange with its body
cut to `RECORDED_BODY_BYTES` and every secret of the run replaced by `[redacted]`.

Classes of DELETE /v1/tasks/{id} (the keys of `profile["classes"]`):

- ``task STATUS``: the first cancel of a task the run knew in STATUS (from the pool, a listing or
  a read); ``task IN_PROGRESS, isCancellable false`` when it was listed as not cancellable;
- ``repeat cancel while pending``: a cancel of a task whose earlier cancel answered 2xx and which
  was read IN_PROGRESS since (an asynchronous target that has not settled yet);
- ``repeat cancel, not read since``: the same with no read in between (the target's mode decides);
- ``near-miss``: an id a character away from a known task's;
- ``url-hostile: REASON``: an id the HTTP layer may refuse (`engine.urls.url_hostility`);
- ``unknown uuid`` / ``unknown id``: any other well-formed id, UUID-shaped or not;
- ``auth: LABEL``: the AUTH-REQUIRED probes (no token, a forged token);
- ``racing cancels``: BEH-RACE's cancels of one IN_PROGRESS task sent at the same moment.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import math
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from conformance.engine.urls import url_hostility
from conformance.model import REDACTED, Exchange, RecordedExchange, RecordedResponse
from conformance.text import clean_line

PROFILE_VERSION = 1
# The recording keeps the start of each body: enough for any real Error body, bounded for a
# hostile one (the suite reads up to 16 MiB).
RECORDED_BODY_BYTES = 64 * 1024
# A few wordings per class show how the target phrases itself; more is noise.
MESSAGES_PER_CLASS = 3
MESSAGE_CHARS = 200
# Error fields a client may rely on being there, and the ones a target may or may not fill.
ERROR_FIELDS = ("arguments", "causes", "context", "errorCode", "errorType", "message", "nestedErrors",
                "referenceToken", "remediationMessage")
IN_PROGRESS = "IN_PROGRESS"
_UUID = re.compile(r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}")
# Nesting is counted this deep at most: a 10,000-deep hostile body is "deeper than 64".
MAX_DEPTH_COUNTED = 64


def media_type(response: RecordedResponse) -> str:
    """The Content-Type as a client compares it: lower case, no spaces; "none" when absent (not
    yet cleaned of control characters: the observer does that)."""
    value = response.content_type.strip().lower().replace(" ", "")
    return value[:100] or "none"


def body_kind(response: RecordedResponse) -> str:
    """"none" (empty), "json-object" (a JSON object: an Error body), "json" (other JSON), "other"."""
    if not response.body:
        return "none"
    decoded = response.json
    if not decoded.ok:
        return "other"
    return "json-object" if isinstance(decoded.value, dict) else "json"


def nesting_depth(error: Any, depth: int = 1) -> int:
    """How deep `nestedErrors` goes (1: no nested errors), counted up to MAX_DEPTH_COUNTED."""
    if depth >= MAX_DEPTH_COUNTED or not isinstance(error, dict):
        return depth
    nested = error.get("nestedErrors")
    if not isinstance(nested, list) or not nested:
        return depth
    return max(nesting_depth(item, depth + 1) for item in nested)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (no interpolation: a value that was observed)."""
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def secret_forms(secret: str) -> set[str]:
    """A secret as it may appear in text: raw, URL-encoded, JSON-escaped and base64 (3 alignments)."""
    # The latin-1 reading of its UTF-8 bytes: how it looks in a body that is not UTF-8 (redact_bytes).
    forms = {secret, quote(secret, safe=""), quote_plus(secret), secret.encode("utf-8", "replace").decode("latin-1")}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret.encode()).decode()
        core = encoded[4:-4] if shift else encoded[:-4]
        if len(core) >= 8:
            forms |= {core, core.replace("+", "-").replace("/", "_")}
    return {f for f in forms if len(f) >= 4}


@functools.lru_cache(maxsize=8)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for every form of every secret, longest first (a form containing another goes
    whole); cached, since the secrets change only on a re-login."""
    forms = sorted({form for secret in secrets for form in secret_forms(secret)}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, forms))) if forms else None


def redactor(secrets: Callable[[], Iterable[str | None]]) -> Callable[[str], str]:
    """A function that replaces every form of every current secret in a text by [redacted]."""

    def redact(text: str) -> str:
        pattern = _secrets_pattern(tuple(secret for secret in secrets() if secret))
        return pattern.sub(REDACTED, text) if pattern is not None else text

    return redact


def redact_bytes(data: bytes, redact: Callable[[str], str]) -> bytes:
    """`redact` applied to bytes that are not UTF-8: each secret's UTF-8 bytes are found as such."""
    return redact(data.decode("latin-1")).encode("latin-1", "replace")


@dataclasses.dataclass
class _Class:
    requests: int = 0
    statuses: Counter[str] = dataclasses.field(default_factory=Counter)
    media_types: Counter[str] = dataclasses.field(default_factory=Counter)
    bodies: Counter[str] = dataclasses.field(default_factory=Counter)
    error_codes: Counter[str] = dataclasses.field(default_factory=Counter)
    error_types: Counter[str] = dataclasses.field(default_factory=Counter)
    messages: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": dict(sorted(self.statuses.items())),
            "media_types": dict(sorted(self.media_types.items())),
            "bodies": dict(sorted(self.bodies.items())),
            "error_codes": dict(sorted(self.error_codes.items())),
            "error_types": dict(sorted(self.error_types.items())),
            "messages": list(self.messages),
        }


class BehaviourObserver:
    """Thread-safe: exchanges arrive from the schema phase's pool and the scenario lane at once."""

    def __init__(self, known: Mapping[str, Iterable[str]] | None = None, *, cancel_method: str = "DELETE",
                 secrets: Callable[[], Iterable[str | None]] = tuple, record: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        # When each task's 2xx cancel came back, and the longest a cancelled task still read
        # IN_PROGRESS after it: the settle time as a lower bound (polls overshoot the upper one).
        self._cancelled_at: dict[str, float] = {}
        self._pending = 0.0
        self._method = cancel_method
        self._redact = redactor(secrets)
        self._record = record
        # Last status the run saw of each task id, and which tasks were listed isCancellable false.
        self._status: dict[str, str] = {}
        self._not_cancellable: set[str] = set()
        # Tasks whose cancel answered 2xx: None (not read since) or the status read since.
        self._cancelled: dict[str, str | None] = {}
        for status, ids in (known or {}).items():
            for task_id in ids:
                self._status[task_id] = status
        self._classes: dict[str, _Class] = defaultdict(_Class)
        self._fields: set[str] = set()
        self._depth = 0
        self._latencies: list[float] = []
        self._cleaned: dict[str, str] = {}
        self.recording: list[RecordedExchange] = []

    # -- observing -----------------------------------------------------------------------------
    def observe(self, exchange: Exchange) -> None:
        with self._lock:
            if exchange.response is not None:
                self._latencies.append(exchange.response.elapsed)
                if exchange.request.method == self._method:
                    self._cancel(exchange, exchange.response)
                elif exchange.request.method == "GET" and exchange.response.status == 200:
                    self._learn(exchange.response)
            if self._record:
                self.recording.append(self._recorded(exchange))

    def _learn(self, response: RecordedResponse) -> None:
        """A read or a listing says which status (and isCancellable) each task has now."""
        decoded = response.json
        if not decoded.ok or not isinstance(decoded.value, dict):
            return
        value = decoded.value
        elements = value.get("elements")
        tasks: list[Any] = elements if isinstance(elements, list) else [value]
        for task in tasks:
            if not isinstance(task, dict) or not isinstance(task.get("id"), str):
                continue
            task_id, status = task["id"], task.get("status")
            if isinstance(status, str):
                status = status.upper()
                self._status[task_id] = status
                if task_id in self._cancelled:
                    self._cancelled[task_id] = status
                    if status == IN_PROGRESS:
                        self._pending = max(self._pending, self._clock() - self._cancelled_at[task_id])
            # Only an IN_PROGRESS task's flag says anything: the others are never cancellable.
            if task.get("isCancellable") is False and status == IN_PROGRESS:
                self._not_cancellable.add(task_id)

    def id_class(self, exchange: Exchange) -> str:
        request = exchange.request
        segment = urlsplit(request.url).path.rsplit("/", 1)[-1]
        raw = exchange.task_id if exchange.task_id is not None else unquote(segment)
        if exchange.purpose.startswith("AUTH-"):
            label = exchange.purpose.partition("cancel with ")[2] or "credentials"
            return f"auth: {label}"
        if exchange.purpose.startswith("BEH-RACE"):
            # Several cancels of one task at once: which answers first is the race's, not a class's.
            return "racing cancels"
        if raw in self._cancelled:
            since = self._cancelled[raw]
            if since is None:
                return "repeat cancel, not read since"
            if since == IN_PROGRESS:
                return "repeat cancel while pending"
        if raw in self._status:
            status = self._status[raw]
            if status == IN_PROGRESS and raw in self._not_cancellable:
                return "task IN_PROGRESS, isCancellable false"
            return f"task {status}"
        if request.id_class == "url-hostile" or url_hostility(raw, segment) is not None:
            return f"url-hostile: {url_hostility(raw, segment) or 'other'}"
        if "near-miss" in exchange.purpose:
            return "near-miss"
        return "unknown uuid" if _UUID.fullmatch(raw) else "unknown id"

    def _cancel(self, exchange: Exchange, response: RecordedResponse) -> None:
        name = self.id_class(exchange)
        entry = self._classes[name]
        entry.requests += 1
        entry.statuses[str(response.status)] += 1
        entry.media_types[self._text(media_type(response))] += 1
        kind = body_kind(response)
        entry.bodies[kind] += 1
        task_id = exchange.task_id
        if 200 <= response.status < 300 and task_id is not None and name.startswith(("task ", "repeat", "racing")):
            self._cancelled[task_id] = None
            self._cancelled_at[task_id] = self._clock()
        if kind != "json-object":
            return
        error = response.json.value
        for key, values in (("errorCode", entry.error_codes), ("errorType", entry.error_types)):
            value = error.get(key)
            if isinstance(value, str):
                values[self._text(value[:MESSAGE_CHARS])] += 1
        message = error.get("message")
        if isinstance(message, str) and len(entry.messages) < MESSAGES_PER_CLASS:
            wording = self._wording(message, exchange)
            if wording not in entry.messages:
                entry.messages.append(wording)
        if response.status >= 400:
            self._fields |= {k for k in error if k in ERROR_FIELDS}
            self._depth = max(self._depth, nesting_depth(error))

    def _text(self, value: str) -> str:
        # The same few codes come back hundreds of times a run: cleaned once each.
        cleaned = self._cleaned.get(value)
        if cleaned is None:
            cleaned = clean_line(self._redact(value))
            if len(self._cleaned) < 1000:
                self._cleaned[value] = cleaned
        return cleaned

    def _wording(self, message: str, exchange: Exchange) -> str:
        """The message with the id replaced by {id}: wording, not data."""
        segment = urlsplit(exchange.request.url).path.rsplit("/", 1)[-1]
        raw = exchange.task_id if exchange.task_id is not None else unquote(segment)
        for form in sorted({raw, segment}, key=len, reverse=True):
            if form:
                message = message.replace(form, "{id}")
        return self._text(message)[:MESSAGE_CHARS]

    def _recorded(self, exchange: Exchange) -> RecordedExchange:
        redact = self._redact
        request = exchange.request
        response = exchange.response
        started = datetime.now(UTC).timestamp() - (response.elapsed if response is not None else 0.0)
        kept_request = dataclasses.replace(
            request, url=redact(request.url),
            headers={k: redact(v) for k, v in request.headers.items()},
            body=redact(request.body.decode("utf-8", "replace")).encode() if request.body else None)
        kept_response = None
        if response is not None:
            body = response.body[:RECORDED_BODY_BYTES]
            try:
                kept_body = redact(body.decode("utf-8")).encode()
            except UnicodeDecodeError:
                # Bytes that are not text stay bytes (HAR keeps them as base64); latin-1 maps each
                # byte to one character and back, and the secrets' UTF-8 forms are matched as such.
                kept_body = redact_bytes(body, redact)
            kept_response = dataclasses.replace(
                response, headers={k: redact(v) for k, v in response.headers.items()},
                body=kept_body,
                truncated=response.truncated or len(response.body) > RECORDED_BODY_BYTES)
        kept = dataclasses.replace(exchange, request=kept_request, response=kept_response,
                                   error=redact(exchange.error) if exchange.error else None,
                                   purpose=redact(exchange.purpose), task_id=None)
        return RecordedExchange(kept, datetime.fromtimestamp(started, UTC))

    # -- the profile ----------------------------------------------------------------------------
    def profile(self, *, cancel_mode: Mapping[str, Any] | None = None, backpressure_retries: int = 0,
                relogins: int = 0, token_lifetime: float | None = None,
                token_requests: int | None = None) -> dict[str, Any]:
        """The behaviour profile so far (see docs/profile.schema.json)."""
        with self._lock:
            classes = {name: self._classes[name].to_json() for name in sorted(self._classes)}
            latencies = sorted(self._latencies)
            fields = sorted(self._fields)
            depth = self._depth
            listed_not_cancellable = len(self._not_cancellable)
            pending_seconds = round(self._pending, 3) if self._pending else None
        pending = classes.get("repeat cancel while pending", {}).get("statuses", {})
        mode = dict(cancel_mode or {})
        latency: dict[str, Any] = {"count": len(latencies)}
        if latencies:
            latency |= {name: round(percentile(latencies, q) * 1000, 1)
                        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))}
        return {
            "profile_version": PROFILE_VERSION,
            "classes": classes,
            "error": {"fields": fields, "max_nesting_depth": depth},
            "cancel": {
                "mode": mode.get("mode"),
                "settle_seconds": mode.get("settle_seconds"),
                "repeat_while_pending": sorted(int(s) for s in pending),
                "pending_seconds": pending_seconds,
            },
            "not_cancellable": {"listed": listed_not_cancellable},
            "backpressure": {"retries": backpressure_retries},
            "token": {"relogins": relogins,
                      "lifetime_seconds": round(token_lifetime, 1) if token_lifetime is not None else None,
                      "lifetime_requests": token_requests},
            "latency_ms": latency,
        }


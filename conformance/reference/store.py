"""State of the reference server: tasks, tokens and the request log.

The app runs on uvicorn's event loop in one thread while tests and the embedded
runner read and seed the state from other threads, so every container here
guards itself with a lock and hands out copies, never live objects.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import itertools
import json
import math
import re
import secrets
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote

STATUSES: tuple[str, ...] = (
    "PENDING",
    "IN_PROGRESS",
    "SUCCESSFUL",
    "FAILED",
    "CANCELLED",
    "COMPLETED_WITH_WARNING",
    "SKIPPED",
)
CANCELLABLE = "IN_PROGRESS"
UNFINISHED: frozenset[str] = frozenset({"PENDING", "IN_PROGRESS"})

# Spellings some builds return (see docs/SOURCES.md#status-spellings); statuses without one keep the canonical form.
TITLE_CASE: Mapping[str, str] = {
    "PENDING": "Pending",
    "IN_PROGRESS": "In Progress",
    "SUCCESSFUL": "Successful",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
}

_TASK_TYPES = ("HOST_COMMISSION", "HOST_DECOMMISSION", "DOMAIN_CREATION", "CLUSTER_EXPANSION", "NSXT_UPGRADE")


def normalize_status(value: str) -> str | None:
    """Map any known spelling ("in progress", "In Progress", "IN_PROGRESS") to the canonical status."""
    canonical = value.strip().upper().replace(" ", "_")
    return canonical if canonical in STATUSES else None


def _timestamp() -> str:
    # The API's timestamps are ISO 8601 UTC with milliseconds.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- task ids and the sloppy lookups of the identity defects ---------------------------------------
IdKind = Literal["uuid", "integer", "string"]
ID_KINDS: tuple[IdKind, ...] = ("uuid", "integer", "string")
# Integer ids start high, so that the short numbers of the id corpus ("0", "1") name no task.
FIRST_INTEGER_ID = 100_000


def new_task_id(kind: IdKind, sequence: int) -> str:
    """A fresh id of ``kind``: a random UUID, an integer, or a string with a space, an accent and
    letters of both cases (so that every string near-miss family has something to work on)."""
    if kind == "integer":
        return str(FIRST_INTEGER_ID + sequence)
    if kind == "string":
        return f"T\u00e2che {sequence:03d}"
    return str(uuid.uuid4())


_UUID_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# Default-ignorable code points some collations and sanitisers drop.
_IGNORABLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def _java_trim(text: str) -> str:
    # String.trim(): every character up to U+0020 goes, at both ends (tabs too, not NBSP).
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _without_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _number(text: str) -> str | None:
    # What a lenient numeric conversion makes of it: "+1", "01", "1.0", "1e0", fullwidth digits.
    try:
        value = float(text)
    except ValueError:
        return None
    return str(int(value)) if math.isfinite(value) and value.is_integer() else None


def _like(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _like_match(candidate: str, ids: Collection[str]) -> str | None:
    # The service checks an id's length before the query and acts only on a single row: so a
    # generated "%" or "a%" (which would reach every task) does not cancel the scenarios' tasks,
    # and the catalogue's verdict stays BEH-UNKNOWN-404 alone.
    pattern = _like(candidate)
    matches = [i for i in ids if len(i) == len(candidate) and pattern.fullmatch(i) is not None]
    return matches[0] if len(matches) == 1 else None


MIN_PREFIX = 8  # prefix-ids: shorter prefixes (which generated ids often are) resolve nothing


def _unique_prefix(candidate: str, ids: Collection[str]) -> str | None:
    if len(candidate) < MIN_PREFIX:
        return None
    matches = [i for i in ids if i.startswith(candidate)]
    return matches[0] if len(matches) == 1 else None


def _first(ids: Collection[str], same: Callable[[str], bool]) -> str | None:
    return next((i for i in ids if same(i)), None)


def _exact(candidate: str, ids: Collection[str]) -> str | None:
    return candidate if candidate in ids else None


# Defect name -> how that stack turns a requested id into a task id (after the exact lookup).
LOOKUPS: Mapping[str, Callable[[str, Collection[str]], str | None]] = {
    "trim-ids": lambda c, ids: _exact(_java_trim(c), ids),
    "pad-space-ids": lambda c, ids: _first(ids, lambda i: i.rstrip(" ") == c.rstrip(" ")),
    "case-insensitive-ids": lambda c, ids: _first(ids, lambda i: i.casefold() == c.casefold()),
    "prefix-ids": _unique_prefix,
    "truncated-ids": lambda c, ids: _exact(c[:max(map(len, ids), default=0)], ids),
    "like-ids": _like_match,
    "numeric-ids": lambda c, ids: _exact(_number(c) or c, ids),
    "double-decoded-ids": lambda c, ids: _exact(unquote(c), ids),
    "path-parameter-ids": lambda c, ids: _exact(c.partition(";")[0], ids),
    "plus-space-ids": lambda c, ids: _exact(c.replace("+", " "), ids),
    "accent-insensitive-ids": lambda c, ids: _first(ids, lambda i: _without_marks(i) == _without_marks(c)),
    "invisible-char-ids": lambda c, ids: _exact(c.translate(_IGNORABLE), ids),
    "nfkc-ids": lambda c, ids: _first(ids, lambda i: unicodedata.normalize("NFKC", i)
                                      == unicodedata.normalize("NFKC", c)),
    "nfc-ids": lambda c, ids: _first(ids, lambda i: unicodedata.normalize("NFC", i)
                                     == unicodedata.normalize("NFC", c)),
    "nul-truncated-ids": lambda c, ids: _exact(c.partition("\x00")[0], ids),
    # Not a defect: RFC 9562 makes a UUID's hex case irrelevant (variation uuid-case-insensitive-ids).
    "uuid-case-insensitive-ids": lambda c, ids: (
        _first(ids, lambda i: i.lower() == c.lower()) if _UUID_ID.fullmatch(c) else None),
}


def loose_lookup(candidate: str, ids: Collection[str], lookup: str) -> str | None:
    """The id among ``ids`` that ``candidate`` names: itself, or what the ``lookup`` stack makes of it."""
    if candidate in ids:
        return candidate
    return LOOKUPS[lookup](candidate, ids)


@dataclass
class Task:
    """One SDDC Manager task as the tasks service stores it."""

    id: str
    name: str
    type: str
    status: str
    creation_timestamp: str
    completion_timestamp: str | None = None
    sequence: int = 0
    pooled: bool = True  # False: listed by GET /v1/tasks but left out of the pool handed to clients

    def to_json(self, *, title_case: bool = False, cancellable: bool | None = None) -> dict[str, Any]:
        """The task as the API's Task schema; ``cancellable`` overrides the status-derived isCancellable."""
        status = TITLE_CASE.get(self.status, self.status) if title_case else self.status
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "localizableDescriptionPack": {
                "component": "com.vmware.vcf.tasks",
                "messageKey": f"{self.type.lower()}.task.name",
                "arguments": [],
                "message": self.name,
            },
            "type": self.type,
            "status": status,
            "creationTimestamp": self.creation_timestamp,
            "subTasks": [],
            "errors": [],
            "resources": [],
            "isCancellable": self.status == CANCELLABLE if cancellable is None else cancellable,
            "isRetryable": self.status == "FAILED",
        }
        if self.completion_timestamp is not None:
            body["completionTimestamp"] = self.completion_timestamp
        if self.status == "FAILED":
            body["resolutionStatus"] = "UNRESOLVED"
            body["errors"] = [
                {"errorCode": "TASK_EXECUTION_FAILED", "message": "Task execution failed", "arguments": []}
            ]
        return body


class CancelOutcome(enum.Enum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not-found"
    NOT_CANCELLABLE = "not-cancellable"
    ALREADY_PENDING = "already-pending"  # an asynchronous cancel of this task has not settled yet


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    previous_status: str | None
    task: Task | None = None  # the task after the request, when it exists


class TaskStore:
    """Thread-safe, insertion-ordered task store.

    Besides plain status changes it keeps two kinds of delayed change, both applied lazily on the
    next access once ``clock()`` has passed their time: *pending cancels* (the task reads
    IN_PROGRESS until it settles to CANCELLED; ``math.inf`` never settles) and *scheduled
    transitions* (a status a task takes at a given time).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, id_kind: IdKind = "uuid") -> None:
        if id_kind not in ID_KINDS:
            raise ValueError(f"unknown id kind {id_kind!r}; valid: {', '.join(ID_KINDS)}")
        self.id_kind = id_kind
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._sequence = itertools.count()
        self._clock = clock
        self._pending: dict[str, float] = {}  # task id -> when its cancel settles
        self._scheduled: dict[str, tuple[float, str]] = {}  # task id -> (when, status)

    def create(self, status: str, *, name: str | None = None, type_: str | None = None,
               task_id: str | None = None, pooled: bool = True) -> Task:
        canonical = normalize_status(status)
        if canonical is None:
            raise ValueError(f"unknown task status {status!r}; valid: {', '.join(STATUSES)}")
        with self._lock:
            if task_id is not None and task_id in self._tasks:
                raise ValueError(f"a task with id {task_id!r} already exists")
            sequence = next(self._sequence)
            now = _timestamp()
            task = Task(
                id=task_id if task_id is not None else new_task_id(self.id_kind, sequence),
                name=name or f"Reference task {sequence} ({canonical})",
                type=type_ or _TASK_TYPES[sequence % len(_TASK_TYPES)],
                status=canonical,
                creation_timestamp=now,
                completion_timestamp=None if canonical in UNFINISHED else now,
                sequence=sequence,
                pooled=pooled,
            )
            self._tasks[task.id] = task
            return dataclasses.replace(task)

    def create_many(self, status: str, count: int) -> builtins.list[str]:
        return [self.create(status).id for _ in range(count)]

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            self._advance()
            task = self._tasks.get(task_id)
            return dataclasses.replace(task) if task else None

    def status_of(self, task_id: str) -> str | None:
        with self._lock:
            self._advance()
            task = self._tasks.get(task_id)
            return task.status if task else None

    def list(
        self, *, status: str | None = None, type_: str | None = None, name: str | None = None
    ) -> list[Task]:
        """Tasks in creation order, filtered by exact status, type and name when given."""
        with self._lock:
            self._advance()
            return [
                dataclasses.replace(task)
                for task in self._tasks.values()
                if (status is None or task.status == status)
                and (type_ is None or task.type == type_)
                and (name is None or task.name == name)
            ]

    def ids_by_status(self) -> dict[str, builtins.list[str]]:
        """Ids of the pooled tasks (the ones handed to clients) by status, in creation order."""
        with self._lock:
            self._advance()
            result: dict[str, builtins.list[str]] = {status: [] for status in STATUSES}
            for task in self._tasks.values():
                if task.pooled:
                    result[task.status].append(task.id)
            return result

    def unpooled_ids(self) -> builtins.list[str]:
        """Ids of tasks that GET /v1/tasks lists but that are not handed to clients."""
        with self._lock:
            return [task.id for task in self._tasks.values() if not task.pooled]

    def resolve_loosely(self, candidate: str) -> str | None:
        """The id a sloppy lookup would match: exact, stripped, a unique prefix (8+ characters) or
        a task id followed by trailing characters; None when nothing or more than one task matches."""
        with self._lock:
            for exact in (candidate, candidate.strip()):
                if exact in self._tasks:
                    return exact
            stripped = candidate.strip()
            if len(stripped) >= 8:
                prefixed = [tid for tid in self._tasks if tid.startswith(stripped)]
                if len(prefixed) == 1:
                    return prefixed[0]
            extended = [tid for tid in self._tasks if len(tid) >= 8 and stripped.startswith(tid)]
            return extended[0] if len(extended) == 1 else None

    def resolve_as(self, candidate: str, lookup: str) -> str | None:
        """The task id a sloppy lookup (a name of ``LOOKUPS``) resolves ``candidate`` to, or None."""
        with self._lock:
            return loose_lookup(candidate, builtins.list(self._tasks), lookup)

    def cancel(self, task_id: str, *, cancellable: Collection[str] = (CANCELLABLE,),
               apply: bool = True, settle_after: float | None = None) -> CancelResult:
        """Atomically check that the task may be cancelled and, if ``apply``, cancel it.

        With ``settle_after`` the cancel is asynchronous: the task keeps its status for that many
        seconds of ``clock()`` (forever for ``math.inf``) and then reads CANCELLED; a further cancel
        meanwhile gets ALREADY_PENDING.
        """
        with self._lock:
            self._advance()
            task = self._tasks.get(task_id)
            if task is None:
                return CancelResult(CancelOutcome.NOT_FOUND, None)
            previous = task.status
            if task_id in self._pending:
                return CancelResult(CancelOutcome.ALREADY_PENDING, previous, dataclasses.replace(task))
            if previous not in cancellable:
                return CancelResult(CancelOutcome.NOT_CANCELLABLE, previous, dataclasses.replace(task))
            if apply:
                if settle_after is None:
                    self._mark_cancelled(task)
                else:
                    self._pending[task_id] = self._clock() + settle_after
            return CancelResult(CancelOutcome.CANCELLED, previous, dataclasses.replace(task))

    def cancel_pending(self, task_id: str) -> bool:
        with self._lock:
            self._advance()
            return task_id in self._pending

    def force_cancel(self, task_id: str) -> Task | None:
        """Cancel without any check (the racing defect does its check separately)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            self._pending.pop(task_id, None)
            self._mark_cancelled(task)
            return dataclasses.replace(task)

    def set_status(self, task_id: str, status: str) -> None:
        """Give a task another status now (finished statuses get a completion timestamp)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return
            task.status = status
            if status not in UNFINISHED and task.completion_timestamp is None:
                task.completion_timestamp = _timestamp()

    def schedule(self, task_id: str, status: str, after: float) -> None:
        """Give a task ``status`` once ``after`` seconds of ``clock()`` have passed."""
        with self._lock:
            self._scheduled[task_id] = (self._clock() + after, status)

    def cancel_next_in_progress(self, after_task_id: str) -> str | None:
        """Cancel the first IN_PROGRESS task created after ``after_task_id``; return its id."""
        with self._lock:
            self._advance()
            anchor = self._tasks.get(after_task_id)
            if anchor is None:
                return None
            for task in self._tasks.values():
                if task.sequence > anchor.sequence and task.status == CANCELLABLE:
                    self._mark_cancelled(task)
                    return task.id
            return None

    def remove(self, task_id: str) -> None:
        with self._lock:
            self._tasks.pop(task_id, None)
            self._pending.pop(task_id, None)
            self._scheduled.pop(task_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    def _advance(self) -> None:
        """Apply the delayed changes whose time has come (caller holds the lock)."""
        if not (self._pending or self._scheduled):
            return
        now = self._clock()
        for task_id in [tid for tid, when in self._pending.items() if when <= now]:
            del self._pending[task_id]
            task = self._tasks.get(task_id)
            if task is not None:
                self._mark_cancelled(task)
        for task_id in [tid for tid, (when, _) in self._scheduled.items() if when <= now]:
            _, status = self._scheduled.pop(task_id)
            self.set_status(task_id, status)

    @staticmethod
    def _mark_cancelled(task: Task) -> None:
        task.status = "CANCELLED"
        task.completion_timestamp = _timestamp()


def seed_store(store: TaskStore, seed_tasks: Mapping[str, int]) -> None:
    """Create the configured number of tasks per status, statuses in catalogue order."""
    for status in STATUSES:
        store.create_many(status, seed_tasks.get(status, 0))


class TokenStore:
    """Issued access and refresh tokens; access tokens expire ``ttl`` seconds after issue, or once
    they have been used ``max_uses`` times (None: no such limit; appliances whose tokens outlive
    few requests are imitated by counting uses, which a test can rely on where seconds would race).

    Bounded: expired access tokens are purged whenever a token is issued, and at most
    ``max_tokens`` access tokens and ``max_tokens`` refresh tokens are kept, the oldest evicted
    first, so no number of logins can grow memory without limit.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, *, max_tokens: int = 1000,
                 max_uses: int | None = None) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if max_uses is not None and max_uses < 0:
            raise ValueError("max_uses must not be negative")
        self._max_uses = max_uses
        self._uses: dict[str, int] = {}  # access token -> requests it was accepted for
        self._ttl = ttl
        self._clock = clock
        self._max = max_tokens
        self._lock = threading.Lock()
        self._access: OrderedDict[str, float] = OrderedDict()  # token -> expiry, oldest first
        self._refresh: OrderedDict[str, None] = OrderedDict()

    def issue_pair(self) -> tuple[str, str]:
        refresh = str(uuid.uuid4())
        with self._lock:
            self._refresh[refresh] = None
            while len(self._refresh) > self._max:
                self._refresh.popitem(last=False)
        return self._issue_access(), refresh

    def refresh(self, refresh_token: str) -> str | None:
        with self._lock:
            known = refresh_token in self._refresh
        return self._issue_access() if known else None

    def invalidate_refresh(self, refresh_token: str) -> bool:
        with self._lock:
            return self._refresh.pop(refresh_token, False) is None

    def is_valid(self, access_token: str) -> bool:
        """Would a request with this token be accepted now? (Does not count as a use.)"""
        with self._lock:
            return self._live(access_token)

    def use(self, access_token: str) -> bool:
        """Accept one request with this token, counting it against ``max_uses``."""
        with self._lock:
            if not self._live(access_token):
                return False
            self._uses[access_token] = self._uses.get(access_token, 0) + 1
            return True

    def _live(self, access_token: str) -> bool:
        expiry = self._access.get(access_token)
        if expiry is None or self._clock() >= expiry:
            return False
        return self._max_uses is None or self._uses.get(access_token, 0) < self._max_uses

    def __len__(self) -> int:
        """Access tokens held (live or expired but not yet purged)."""
        with self._lock:
            return len(self._access)

    @property
    def refresh_count(self) -> int:
        with self._lock:
            return len(self._refresh)

    def _issue_access(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            # Expiries grow with issue order (one ttl, a monotonic clock), so expired ones lead.
            while self._access and next(iter(self._access.values())) <= now:
                self._uses.pop(self._access.popitem(last=False)[0], None)
            self._access[token] = now + self._ttl
            while len(self._access) > self._max:
                self._uses.pop(self._access.popitem(last=False)[0], None)
        return token


class RateLimiter:
    """Token buckets per key (a client IP): ``rate`` tokens a second, at most ``burst`` saved up.

    At most ``max_keys`` buckets are kept, the least recently used evicted first.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, *,
                 max_keys: int = 4096) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when granted, else the seconds until one is available."""
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            granted = tokens >= 1.0
            if granted:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return 0.0 if granted else (1.0 - tokens) / self._rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """A Retry-After value (whole seconds, at least 1) for a wait ``acquire`` answered."""
        return str(max(1, math.ceil(wait)))


MAX_LOGGED_PATH = 8192  # characters of a path or task id a record keeps; longer ones are cut


def _clipped(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_LOGGED_PATH:
        return text
    return text[:MAX_LOGGED_PATH] + "...[cut]"


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received and what it answered."""

    method: str
    path: str  # raw (still percent-encoded) path, without the query string; cut after MAX_LOGGED_PATH
    task_id: str | None  # decoded id for /v1/tasks/{id}, else None
    status_code: int
    task_status_before: str | None  # None when the id is unknown or the route has no task id
    authenticated: bool  # whether the request carried a valid access token
    timestamp: float  # time.monotonic() when the request arrived

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _clipped(self.path))
        object.__setattr__(self, "task_id", _clipped(self.task_id))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_REQUEST_LOG_SIZE = 10_000


@dataclass
class RequestLog:
    """Thread-safe ring buffer of the last ``maxlen`` requests; optionally mirrored as JSON lines to a file.

    ``records`` is a plain list (oldest first) that never holds more than ``maxlen`` records: each
    append beyond that evicts the oldest record and counts it in ``evicted``. The file mirror, when
    asked for, keeps every record.
    """

    path: str | None = None
    maxlen: int = DEFAULT_REQUEST_LOG_SIZE
    evicted: int = 0
    _records: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.maxlen < 1:
            raise ValueError("maxlen must be at least 1")

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            excess = len(self._records) - self.maxlen
            if excess > 0:
                del self._records[:excess]
                self.evicted += excess
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as sink:
                    sink.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")

    @property
    def records(self) -> list[RequestRecord]:
        """The live list (appends are atomic; copy it before iterating while requests run)."""
        return self._records

    def snapshot(self, offset: int = 0, limit: int | None = None) -> list[RequestRecord]:
        """A copy of the records held, oldest first, or of ``limit`` of them from ``offset``."""
        with self._lock:
            end = None if limit is None else offset + limit
            return self._records[offset:end]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self._records)

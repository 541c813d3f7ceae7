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
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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

# Spellings some builds return (see FACTS.md); statuses without one keep the canonical form.
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

    def to_json(self, *, title_case: bool = False) -> dict[str, Any]:
        """The task as the API's Task schema."""
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
            "isCancellable": self.status == CANCELLABLE,
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


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    previous_status: str | None
    task: Task | None = None  # the task after the request, when it exists


class TaskStore:
    """Thread-safe, insertion-ordered task store."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._sequence = itertools.count()

    def create(self, status: str, *, name: str | None = None, type_: str | None = None) -> Task:
        canonical = normalize_status(status)
        if canonical is None:
            raise ValueError(f"unknown task status {status!r}; valid: {', '.join(STATUSES)}")
        with self._lock:
            sequence = next(self._sequence)
            now = _timestamp()
            task = Task(
                id=str(uuid.uuid4()),
                name=name or f"Reference task {sequence} ({canonical})",
                type=type_ or _TASK_TYPES[sequence % len(_TASK_TYPES)],
                status=canonical,
                creation_timestamp=now,
                completion_timestamp=None if canonical in UNFINISHED else now,
                sequence=sequence,
            )
            self._tasks[task.id] = task
            return dataclasses.replace(task)

    def create_many(self, status: str, count: int) -> builtins.list[str]:
        return [self.create(status).id for _ in range(count)]

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return dataclasses.replace(task) if task else None

    def status_of(self, task_id: str) -> str | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return task.status if task else None

    def list(
        self, *, status: str | None = None, type_: str | None = None, name: str | None = None
    ) -> list[Task]:
        """Tasks in creation order, filtered by exact status, type and name when given."""
        with self._lock:
            return [
                dataclasses.replace(task)
                for task in self._tasks.values()
                if (status is None or task.status == status)
                and (type_ is None or task.type == type_)
                and (name is None or task.name == name)
            ]

    def ids_by_status(self) -> dict[str, builtins.list[str]]:
        with self._lock:
            result: dict[str, builtins.list[str]] = {status: [] for status in STATUSES}
            for task in self._tasks.values():
                result[task.status].append(task.id)
            return result

    def cancel(self, task_id: str, *, cancellable: Collection[str] = (CANCELLABLE,),
               apply: bool = True) -> CancelResult:
        """Atomically check that the task may be cancelled and, if ``apply``, cancel it."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return CancelResult(CancelOutcome.NOT_FOUND, None)
            previous = task.status
            if previous not in cancellable:
                return CancelResult(CancelOutcome.NOT_CANCELLABLE, previous, dataclasses.replace(task))
            if apply:
                self._mark_cancelled(task)
            return CancelResult(CancelOutcome.CANCELLED, previous, dataclasses.replace(task))

    def force_cancel(self, task_id: str) -> Task | None:
        """Cancel without any check (the racing defect does its check separately)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            self._mark_cancelled(task)
            return dataclasses.replace(task)

    def cancel_next_in_progress(self, after_task_id: str) -> str | None:
        """Cancel the first IN_PROGRESS task created after ``after_task_id``; return its id."""
        with self._lock:
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

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    @staticmethod
    def _mark_cancelled(task: Task) -> None:
        task.status = "CANCELLED"
        task.completion_timestamp = _timestamp()


def seed_store(store: TaskStore, seed_tasks: Mapping[str, int]) -> None:
    """Create the configured number of tasks per status, statuses in catalogue order."""
    for status in STATUSES:
        store.create_many(status, seed_tasks.get(status, 0))


class TokenStore:
    """Issued access and refresh tokens; access tokens expire ``ttl`` seconds after issue."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()

    def issue_pair(self) -> tuple[str, str]:
        refresh = str(uuid.uuid4())
        with self._lock:
            self._refresh.add(refresh)
        return self._issue_access(), refresh

    def refresh(self, refresh_token: str) -> str | None:
        with self._lock:
            known = refresh_token in self._refresh
        return self._issue_access() if known else None

    def invalidate_refresh(self, refresh_token: str) -> bool:
        with self._lock:
            if refresh_token in self._refresh:
                self._refresh.discard(refresh_token)
                return True
            return False

    def is_valid(self, access_token: str) -> bool:
        with self._lock:
            expiry = self._access.get(access_token)
            return expiry is not None and self._clock() < expiry

    def _issue_access(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._access[token] = self._clock() + self._ttl
        return token


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received and what it answered."""

    method: str
    path: str  # raw (still percent-encoded) path, without the query string
    task_id: str | None  # decoded id for /v1/tasks/{id}, else None
    status_code: int
    task_status_before: str | None  # None when the id is unknown or the route has no task id
    authenticated: bool  # whether the request carried a valid access token
    timestamp: float  # time.monotonic() when the request arrived

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RequestLog:
    """Append-only, thread-safe request log; optionally mirrored as JSON lines to a file."""

    path: str | None = None
    _records: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as sink:
                    sink.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")

    @property
    def records(self) -> list[RequestRecord]:
        """The live list (appends are atomic; copy it before iterating while requests run)."""
        return self._records

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self._records)

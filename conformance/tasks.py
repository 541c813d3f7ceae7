"""The task pool: which task ids the suite may use, in which status, and for what.

Safety rule: an IN_PROGRESS task is cancelled only when the user handed its id over (or allowed
cancelling discovered ones); each such id is used by exactly one scenario.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from conformance.bodies import decode_json
from conformance.errors import TasksFileError

# A tasks file lists ids; even thousands of them are far below this.
MAX_TASKS_FILE_BYTES = 16 * 1024 * 1024

STATUSES = ("PENDING", "IN_PROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED", "COMPLETED_WITH_WARNING", "SKIPPED")
CANCELLABLE = "IN_PROGRESS"
CANCELLED = "CANCELLED"

# Builds spell statuses differently (docs/SOURCES.md#status-spellings): "In Progress", "IN PROGRESS", "Cancelled"...
_SPELLINGS = {s.replace("_", "").replace(" ", ""): s for s in STATUSES}


def normalise_status(value: Any) -> str | None:
    """The canonical status for any known spelling, or None when it is not a task status."""
    if not isinstance(value, str):
        return None
    return _SPELLINGS.get(value.upper().replace("_", "").replace(" ", "").replace("-", ""))


def encode_id(raw: str) -> str:
    """Percent-encode a task id as one path segment, dot segments included."""
    if raw in (".", ".."):
        return raw.replace(".", "%2E")
    return quote(raw, safe="")


def parse_task_option(text: str, flag_prefix: str = "--") -> tuple[str, str]:
    """`STATE=ID` as given to --task (or --sddc-task: `flag_prefix` names the option in messages)."""
    state, sep, task_id = text.partition("=")
    status = normalise_status(state.strip())
    if not sep or not task_id.strip():
        raise TasksFileError(f"{flag_prefix}task {text!r}: expected STATE=ID, e.g. IN_PROGRESS=1b2c...")
    if status is None:
        raise TasksFileError(f"{flag_prefix}task {text!r}: unknown status {state!r}; one of {', '.join(STATUSES)}")
    return status, task_id.strip()


def load_tasks_file(path: Path) -> dict[str, list[str]]:
    """A JSON object mapping statuses to id lists, or such an object under a top-level "tasks" key."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_TASKS_FILE_BYTES + 1)
    except OSError as exc:
        raise TasksFileError(f"cannot read tasks file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_TASKS_FILE_BYTES:
        raise TasksFileError(f"tasks file {path} is larger than {MAX_TASKS_FILE_BYTES} bytes")
    # Depth-bounded: a 100k-deep file must be a usage error, not a RecursionError.
    decoded = decode_json(raw)
    if not decoded.ok:
        raise TasksFileError(f"tasks file {path} is not JSON: {str(decoded.error).replace('the body', 'the file')}")
    document = decoded.value
    if isinstance(document, dict) and isinstance(document.get("tasks"), dict):
        document = document["tasks"]
    if not isinstance(document, dict):
        raise TasksFileError(f"tasks file {path}: expected an object mapping statuses to lists of ids")
    result: dict[str, list[str]] = {}
    for key, ids in document.items():
        status = normalise_status(key)
        if status is None:
            raise TasksFileError(f"tasks file {path}: unknown status {key!r}; one of {', '.join(STATUSES)}")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise TasksFileError(f"tasks file {path}: {key!r} must be a list of non-empty id strings")
        result.setdefault(status, []).extend(ids)
    return result


def collect_tasks(tasks_file: str | Path | None, task_options: Iterable[str] = (),
                  flag_prefix: str = "--") -> dict[str, list[str]]:
    """The handed-over tasks of --tasks-file and every --task STATE=ID, merged by status."""
    tasks = load_tasks_file(Path(tasks_file)) if tasks_file else {}
    for text in task_options:
        status, task_id = parse_task_option(text, flag_prefix)
        tasks.setdefault(status, []).append(task_id)
    return tasks


@dataclass
class TaskPool:
    """Ids handed over by the user (or provisioned on the reference server) and ids discovered."""

    given: dict[str, list[str]] = field(default_factory=dict)
    discovered: dict[str, list[str]] = field(default_factory=dict)
    allow_cancel_discovered: bool = False
    # Ids the target listed that the run may not use (no --discover): generated ids avoid them.
    existing: set[str] = field(default_factory=set)
    # Listed IN_PROGRESS tasks that say isCancellable: false (--discover takes them last).
    refusing: set[str] = field(default_factory=set)
    _taken: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Iterable[str]]) -> TaskPool:
        return cls(given={s: list(ids) for s, ids in mapping.items() if ids})

    def add(self, status: str, task_id: str) -> None:
        self.given.setdefault(status, []).append(task_id)

    def known_ids(self) -> set[str]:
        """Every id known to name an existing task; generated ids must avoid all of them."""
        return self.existing | {i for ids in (*self.given.values(), *self.discovered.values()) for i in ids}

    def non_cancellable(self) -> list[tuple[str, str]]:
        """(status, id) of tasks safe to send a cancel to: it must be refused and change nothing."""
        seen: dict[str, str] = {}
        for source in (self.given, self.discovered):
            for status, ids in source.items():
                if status == CANCELLABLE:
                    continue
                for task_id in ids:
                    seen.setdefault(task_id, status)
        return [(status, task_id) for task_id, status in seen.items()]

    def by_status(self, status: str) -> list[str]:
        ids = list(self.given.get(status, []))
        ids += [i for i in self.discovered.get(status, []) if i not in ids]
        return ids

    def take_in_progress(self) -> str | None:
        """An IN_PROGRESS id nobody used yet, or None. Only these may ever be cancelled."""
        candidates = list(self.given.get(CANCELLABLE, []))
        if self.allow_cancel_discovered:
            candidates += self.discovered.get(CANCELLABLE, [])
        with self._lock:
            for task_id in candidates:
                if task_id not in self._taken:
                    self._taken.add(task_id)
                    return task_id
        return None

    def cancellable_allowed(self, task_id: str) -> bool:
        if task_id in self.given.get(CANCELLABLE, []):
            return True
        return self.allow_cancel_discovered and task_id in self.discovered.get(CANCELLABLE, [])

"""What flows through the suite: recorded exchanges, violations, findings and results."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from conformance.bodies import JsonBody, decode_json

REDACTED = "[redacted]"


@dataclass(frozen=True)
class RecordedRequest:
    """A request as it was sent, with credentials already replaced by placeholders."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    # For a cancel: "well-formed" or "url-hostile" (engine.urls.url_class), so the checks can
    # tell the HTTP layer's refusal of a hostile id from the API's answer.
    id_class: str | None = None

    def as_curl(self) -> str:
        words = ["curl", "-X", self.method]
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                # A runnable reproduction that never carries the secret: the shell expands it.
                words.append('-H "Authorization: Bearer ${SDDC_TOKEN}"')
            else:
                words.append("-H " + shlex.quote(f"{name}: {value}"))
        if self.body:
            words.append("--data-binary " + shlex.quote(self.body.decode("utf-8", "replace")))
        words.append(shlex.quote(self.url))
        return " ".join(words)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", "replace") if self.body else None,
            "curl": self.as_curl(),
        }


@dataclass(frozen=True)
class RecordedResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    elapsed: float
    # Set when the body was longer than the suite reads; `body` then holds only the prefix.
    truncated: bool = False

    @property
    def content_type(self) -> str:
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value
        return ""

    @cached_property
    def json(self) -> JsonBody:
        if self.truncated:
            return JsonBody(error=f"the body is larger than the suite reads ({len(self.body)} bytes read)")
        return decode_json(self.body)

    def excerpt(self, limit: int = 2048) -> str:
        text = self.body[:limit].decode("utf-8", "replace")
        more = len(self.body) - limit
        if more > 0 or self.truncated:
            text += f"… [{max(more, 0)} more bytes{' and more not read' if self.truncated else ''}]"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "headers": dict(self.headers),
            "body_excerpt": self.excerpt(),
            "body_bytes": len(self.body),
            "truncated": self.truncated,
            "elapsed_seconds": round(self.elapsed, 4),
        }


@dataclass(frozen=True)
class Exchange:
    """One request and what came back: a response, or a transport error instead."""

    request: RecordedRequest
    response: RecordedResponse | None
    error: str | None = None
    # Why the suite sent it ("generated id", "BEH-RACE: concurrent cancel 2/4"); shown in reports.
    purpose: str = ""
    task_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "task_id": self.task_id,
            "request": self.request.to_json(),
            "response": self.response.to_json() if self.response else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class RecordedExchange:
    """One exchange as a recording (HAR) keeps it: secrets redacted, body cut, start time known."""

    exchange: Exchange
    started: datetime


@dataclass(frozen=True)
class Violation:
    message: str
    # JSON pointer into the response body, when the violation is about one place in it.
    path: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path is not None else self.message

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "path": self.path}


class Level(StrEnum):
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    requirement_id: str
    level: Level
    summary: str
    violations: tuple[Violation, ...] = ()
    exchange: Exchange | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement_id,
            "level": str(self.level),
            "summary": self.summary,
            "violations": [v.to_json() for v in self.violations],
            "exchange": self.exchange.to_json() if self.exchange else None,
        }


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    # The requirement was selected but its inputs were missing; never counted as passed.
    NOT_RUN = "NOT RUN"
    # The requirement was not selected for this run (another profile).
    SKIPPED = "SKIPPED"


class Severity(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    # A MAY requirement documents a permitted variation: it never fails, it only informs.
    MAY = "MAY"


class Profile(StrEnum):
    """What a run covers; every requirement belongs to SCHEMA or BEHAVIOR, a run may be FULL."""

    SCHEMA = "schema"
    BEHAVIOR = "behavior"
    FULL = "full"

    def includes(self, profile: Profile) -> bool:
        return self is Profile.FULL or self is profile


class Kind(StrEnum):
    # Applied to every response the suite receives from the cancel operation.
    RESPONSE = "response"
    # A scenario drives the target through several requests and judges the sequence.
    SCENARIO = "scenario"


@dataclass(frozen=True)
class Requirement:
    """One registered requirement: the registry (conformance.requirements) creates these."""

    id: str
    severity: Severity
    profile: Profile
    kind: Kind
    title: str
    seed: str
    source: str
    func: Callable[..., Any]
    # For --dry-run: what the requirement would send, given a session (requests, ids).
    plan: Callable[..., list[str]] | None = None
    # A scenario that takes IN_PROGRESS tasks from the pool (which one gets which depends on order).
    takes_in_progress: bool = False
    # A long scenario that runs in its own thread beside the others (see engine.lanes).
    beside: bool = False

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()

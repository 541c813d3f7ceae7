"""The requirement registry: every check is registered once, with its ID, severity and seed sentence.

The catalogue (`sddc-conformance requirements`, docs/REQUIREMENTS.md, junit.xml) is generated
from this registry; no other list of requirements exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Severity(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    # A MAY requirement documents a permitted variation: it never fails, it only informs.
    MAY = "MAY"


class Profile(StrEnum):
    SCHEMA = "schema"
    BEHAVIOR = "behavior"


class Kind(StrEnum):
    # Applied to every response the suite receives from the cancel operation.
    RESPONSE = "response"
    # A scenario drives the target through several requests and judges the sequence.
    SCENARIO = "scenario"


@dataclass(frozen=True)
class Requirement:
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

    @property
    def doc(self) -> str:
        return (self.func.__doc__ or "").strip()


_REGISTRY: dict[str, Requirement] = {}

# Modules whose import registers requirements; the registry is complete once they are loaded.
_PROVIDERS = ("conformance.checks", "conformance.behavior", "conformance.stateful")


def register(
    requirement_id: str,
    *,
    severity: Severity,
    profile: Profile,
    kind: Kind,
    title: str,
    seed: str,
    source: str = "seed",
    plan: Callable[..., list[str]] | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as the implementation of one requirement."""

    def decorator(func: F) -> F:
        if requirement_id in _REGISTRY and _REGISTRY[requirement_id].func is not func:
            raise ValueError(f"requirement {requirement_id} is registered twice")
        _REGISTRY[requirement_id] = Requirement(
            id=requirement_id,
            severity=severity,
            profile=profile,
            kind=kind,
            title=title,
            seed=seed,
            source=source,
            func=func,
            plan=plan,
        )
        return func

    return decorator


def _load() -> None:
    for module in _PROVIDERS:
        importlib.import_module(module)


def catalogue() -> list[Requirement]:
    """Every requirement, schema ones first, in registration order within a profile."""
    _load()
    order = {Profile.SCHEMA: 0, Profile.BEHAVIOR: 1}
    return sorted(_REGISTRY.values(), key=lambda r: order[r.profile])


def get(requirement_id: str) -> Requirement:
    _load()
    return _REGISTRY[requirement_id]


def response_checks() -> list[Requirement]:
    return [r for r in catalogue() if r.kind is Kind.RESPONSE]


def scenarios() -> list[Requirement]:
    return [r for r in catalogue() if r.kind is Kind.SCENARIO]

"""Requirements: the checks, scenarios and the state machine, each registered once.

Importing this package imports every module that registers a requirement (explicitly, below),
so `catalogue()` is always complete.
"""

from __future__ import annotations

from conformance.model import Kind, Profile, Requirement, Severity
from conformance.requirements import checks, scenarios, stateful
from conformance.requirements.registry import REGISTRY, register

_ORDER = {Profile.SCHEMA: 0, Profile.BEHAVIOR: 1}


def catalogue() -> list[Requirement]:
    """Every requirement, schema ones first, in registration order within a profile."""
    return sorted(REGISTRY.values(), key=lambda r: _ORDER[r.profile])


def get(requirement_id: str) -> Requirement:
    return REGISTRY[requirement_id]


def response_checks() -> list[Requirement]:
    return [r for r in catalogue() if r.kind is Kind.RESPONSE]


def scenario_requirements() -> list[Requirement]:
    return [r for r in catalogue() if r.kind is Kind.SCENARIO]


__all__ = [
    "Kind",
    "Profile",
    "Requirement",
    "Severity",
    "catalogue",
    "checks",
    "get",
    "register",
    "response_checks",
    "scenario_requirements",
    "scenarios",
    "stateful",
]

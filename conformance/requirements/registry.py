"""The requirement registry: every check is registered once, with its ID, severity and seed sentence.

The catalogue (`sddc-conformance requirements`, docs/REQUIREMENTS.md, junit.xml) is generated
from this registry; no other list of requirements exists. The package `conformance.requirements`
imports every module that registers, explicitly, so importing it completes the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from conformance.model import Kind, Profile, Requirement, Severity

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Requirement] = {}


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
    takes_in_progress: bool = False,
    beside: bool = False,
) -> Callable[[F], F]:
    """Register the decorated function as the implementation of one requirement."""
    if profile is Profile.FULL:
        raise ValueError(f"requirement {requirement_id}: a requirement belongs to the schema or behavior profile")

    def decorator(func: F) -> F:
        if requirement_id in REGISTRY and REGISTRY[requirement_id].func is not func:
            raise ValueError(f"requirement {requirement_id} is registered twice")
        REGISTRY[requirement_id] = Requirement(
            id=requirement_id,
            severity=severity,
            profile=profile,
            kind=kind,
            title=title,
            seed=seed,
            source=source,
            func=func,
            plan=plan,
            takes_in_progress=takes_in_progress,
            beside=beside,
        )
        return func

    return decorator

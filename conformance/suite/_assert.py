"""Turning recorded findings into a pytest verdict for people who run the suite with plain pytest."""

from __future__ import annotations

from collections.abc import Iterable

from conformance.engine.session import SuiteSession


def assert_requirements_held(session: SuiteSession, requirement_ids: Iterable[str]) -> None:
    failures = session.recorder.failures_for(requirement_ids)
    if not failures:
        return
    lines = []
    for finding in failures:
        lines.append(f"{finding.requirement_id}: {finding.summary}")
        if finding.exchange is not None:
            lines.append(f"    reproduce: {finding.exchange.request.as_curl()}")
    raise AssertionError("conformance failures:\n" + "\n".join(lines))

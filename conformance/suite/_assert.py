"""Turning recorded findings into a pytest verdict for people who run the suite with plain pytest."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.engine.session import SuiteSession


class ConformanceFailure(AssertionError):
    """The target broke a requirement: pytest shows this message, not the suite's own traceback."""

    def __repr__(self) -> str:
        return str(self)


def assert_requirements_held(session: SuiteSession, requirement_ids: Iterable[str]) -> None:
    __tracebackhide__ = True
    failures = session.recorder.failures_for(requirement_ids)
    if not failures:
        return
    lines = []
    for finding in failures:
        lines.append(f"{finding.requirement_id}: {finding.summary}")
        if finding.exchange is not None:
            lines.append(f"    reproduce: {finding.exchange.request.as_curl()}")
    # The first line is what pytest's short summary shows: make it the first finding itself.
    raise ConformanceFailure("\n".join(lines))

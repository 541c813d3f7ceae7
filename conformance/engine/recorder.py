"""Collects findings as exchanges and scenarios report them, and turns them into per-requirement results."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conformance import requirements
from conformance.errors import AuthenticationFailed
from conformance.model import Exchange, Finding, Level, Outcome, Requirement, Severity, Violation
from conformance.outcome import RequirementResult
from conformance.requirements.checks import CheckContext

# Fuzzing repeats the same failure on many requests; a reader needs a few examples and a count.
EXAMPLES_PER_REQUIREMENT = 5
INFO_NOTES_PER_REQUIREMENT = 20


@dataclass
class _Tally:
    evaluations: int = 0
    failures: int = 0
    findings: list[Finding] = field(default_factory=list)
    seen: set[tuple[str, ...]] = field(default_factory=set)
    not_run_reason: str | None = None
    # Caveats worth a reader's attention even when the requirement passed ("not exercised for SKIPPED").
    remarks: list[str] = field(default_factory=list)


class Recorder:
    """Thread-safe sink for everything the suite observes during one run."""

    def __init__(self, ctx: CheckContext | None = None) -> None:
        self.ctx = ctx or CheckContext.default()
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {r.id: _Tally() for r in requirements.catalogue()}
        self.exchanges = 0
        # Turns a scenario's NOT RUN reason into the real cause (budget, tasks used up, the option
        # spelled as where the user is); the session sets it, a bare recorder keeps reasons as given.
        self.explain: Callable[[str], str] = lambda reason: reason
        # Set when the request budget ran out: requirements that saw nothing say so.
        self.budget_exhausted: Callable[[], bool] = lambda: False
        # Asked when a checked exchange answers 401/403: does a read-only request still get in?
        # A bare recorder (replay, unit tests) judges the status like any other.
        self.token_accepted: Callable[[], bool] = lambda: True

    def check(self, exchange: Exchange) -> list[Finding]:
        """Run every response check on one exchange of the cancel operation; return its failures."""
        if (exchange.response is not None and exchange.response.status in (401, 403)
                and not self.token_accepted()):
            # Every exchange checked here carried the suite's own credentials (the AUTH-REQUIRED
            # probes are recorded, not checked), and a read-only request now gets 401/403 too: the
            # token stopped working and re-login could not help. That says nothing about the
            # cancel operation, so it is no verdict rather than an undocumented status.
            raise AuthenticationFailed(
                f"the target refused the suite's token in the middle of the run "
                f"({exchange.response.status} to {exchange.request.method} {exchange.purpose or 'a request'}): "
                "the token expired or was revoked; get a fresh one and run again"
            )
        failed: list[Finding] = []
        for requirement in requirements.response_checks():
            violations = requirement.func(self.ctx, exchange)
            if violations is None:
                continue
            finding = self._add(requirement, tuple(violations), exchange)
            if finding is not None and finding.level is Level.FAIL:
                failed.append(finding)
        with self._lock:
            self.exchanges += 1
        return failed

    def record(
        self,
        requirement_id: str,
        violations: Iterable[Violation] = (),
        exchange: Exchange | None = None,
        summary: str | None = None,
    ) -> Finding | None:
        """Record one evaluation of a scenario requirement: no violations means it held."""
        return self._add(requirements.get(requirement_id), tuple(violations), exchange, summary)

    def not_run(self, requirement_id: str, reason: str) -> None:
        reason = self.explain(reason)
        with self._lock:
            tally = self._tallies[requirement_id]
            if tally.not_run_reason is None:
                tally.not_run_reason = reason

    def unexercised_reason(self, requirement_id: str) -> str | None:
        """Why a requirement has not been evaluated yet, or None once it has been."""
        with self._lock:
            tally = self._tallies[requirement_id]
            return None if tally.evaluations else tally.not_run_reason

    def remark(self, requirement_id: str, text: str) -> None:
        with self._lock:
            remarks = self._tallies[requirement_id].remarks
            if text not in remarks:
                remarks.append(text)

    def _add(
        self,
        requirement: Requirement,
        violations: tuple[Violation, ...],
        exchange: Exchange | None,
        summary: str | None = None,
    ) -> Finding | None:
        informative = requirement.severity is Severity.MAY
        with self._lock:
            tally = self._tallies[requirement.id]
            tally.evaluations += 1
            if not violations:
                return None
            if not informative:
                tally.failures += 1
            key = tuple(str(v) for v in violations)
            limit = INFO_NOTES_PER_REQUIREMENT if informative else EXAMPLES_PER_REQUIREMENT
            if key in tally.seen or len(tally.findings) >= limit:
                return Finding(requirement.id, Level.INFO if informative else Level.FAIL, "", violations)
            tally.seen.add(key)
            finding = Finding(
                requirement_id=requirement.id,
                level=Level.INFO if informative else Level.FAIL,
                summary=summary or _summarise(violations),
                violations=violations,
                exchange=exchange,
            )
            tally.findings.append(finding)
            return finding

    def failures_for(self, requirement_ids: Iterable[str]) -> list[Finding]:
        with self._lock:
            return [
                f
                for rid in requirement_ids
                for f in self._tallies[rid].findings
                if f.level is Level.FAIL and requirements.get(rid).severity is Severity.MUST
            ]

    def results(self, selected: Iterable[str] | None = None) -> list[RequirementResult]:
        chosen = set(selected) if selected is not None else None
        out = []
        with self._lock:
            for requirement in requirements.catalogue():
                tally = self._tallies[requirement.id]
                outcome, reason = _judge(requirement, tally, chosen, self.budget_exhausted())
                out.append(
                    RequirementResult(
                        requirement=requirement,
                        outcome=outcome,
                        reason=reason,
                        evaluations=tally.evaluations,
                        failures=tally.failures,
                        findings=tuple(tally.findings),
                    )
                )
        return out


def _summarise(violations: tuple[Violation, ...]) -> str:
    first = str(violations[0])
    more = len(violations) - 1
    return first if not more else f"{first} (and {more} more)"


def _evaluations(n: int) -> str:
    return f"{n} evaluation{'s' if n != 1 else ''}"


def _judge(requirement: Requirement, tally: _Tally, chosen: set[str] | None,
           budget_exhausted: bool = False) -> tuple[Outcome, str]:
    if chosen is not None and requirement.id not in chosen:
        return Outcome.SKIPPED, "not part of the selected profile"
    remarks = "".join(f"; {r}" for r in tally.remarks)
    if tally.failures:
        return Outcome.FAIL, f"{tally.failures} of {_evaluations(tally.evaluations)} failed{remarks}"
    if tally.evaluations:
        return Outcome.PASS, f"{_evaluations(tally.evaluations)}{remarks}"
    if tally.not_run_reason:
        return Outcome.NOT_RUN, tally.not_run_reason
    if budget_exhausted:
        return Outcome.NOT_RUN, "request budget exhausted before a response this requirement applies to came back"
    return Outcome.NOT_RUN, "no response this requirement applies to came back during the run"

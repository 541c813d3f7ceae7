"""What a run concluded, as plain data: exit codes, verdicts, per-requirement results.

Nothing here imports the engine, the checks or the CLI: reports read these, the CLI turns a
`Verdict` into an `ExitCode`, and that mapping is the only place an exit number is defined.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from conformance.model import Finding, Outcome, RecordedExchange, Requirement, Severity


class ExitCode(enum.IntEnum):
    """How `sddc-conformance` ends; modelled on pytest's `ExitCode`. Each member is documented."""

    #: The target is conformant (run); every artifact matches (verify); every failure is fixed (replay).
    OK = 0
    #: Not conformant: a MUST failed, a SHOULD failed with --strict, or --certify unmet; for verify a
    #: tampered artifact; for replay a failure that still fails; for spec diff a drift.
    NOT_CONFORMANT = 1
    #: Usage or configuration error: a bad flag or file, stale task ids, an unusable report or document.
    USAGE_ERROR = 2
    #: No verdict: the target is unreachable, stopped answering, refused the credentials or kept
    #: answering 429; reports of what was seen are kept.
    NO_VERDICT = 3
    #: Internal error of the suite (a bug; please report it).
    INTERNAL_ERROR = 4
    #: Interrupted by Ctrl-C or SIGTERM; reports of what was seen are kept, with NO VERDICT.
    INTERRUPTED = 130

    @property
    def doc(self) -> str:
        return _EXIT_DOCS[self]


_EXIT_DOCS = {
    ExitCode.OK: "conformant",
    ExitCode.NOT_CONFORMANT: "not conformant (a MUST failed; a SHOULD failed with --strict; --certify unmet)",
    ExitCode.USAGE_ERROR: "usage or configuration error (bad flag or file, stale task ids)",
    ExitCode.NO_VERDICT: "no verdict: target unreachable, stopped answering, refused the credentials or kept "
    "answering 429",
    ExitCode.INTERNAL_ERROR: "internal error of the suite (a bug; please report it)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); reports of what was seen are kept",
}


def exit_codes_epilog(overrides: dict[ExitCode, str] | None = None,
                      only: tuple[ExitCode, ...] | None = None) -> str:
    """The "Exit codes:" block of a click epilog, generated from ExitCode (never re-typed)."""
    docs = {**_EXIT_DOCS, **(overrides or {})}
    codes = only or tuple(ExitCode)
    lines = [f"  {int(code)}  {docs[code]}" for code in codes]
    return "\b\nExit codes:\n" + "\n".join(lines) + "\n"


def token_recipe(base_url: str, username: str) -> str:
    """One shell line that puts a fresh token in SDDC_TOKEN; the password stays in SDDC_PASSWORD."""
    user = username.replace("'", "").replace('"', "")
    return (
        f"export SDDC_TOKEN=$(curl -s -X POST {base_url}/v1/tokens -H 'Content-Type: application/json' "
        f"-d '{{\"username\":\"{user}\",\"password\":\"'\"$SDDC_PASSWORD\"'\"}}' "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"accessToken\"])')"
    )


class Verdict(enum.StrEnum):
    """The one word a run ends with; the console, every report and the exit code agree on it."""

    CONFORMANT = "CONFORMANT"
    NOT_CONFORMANT = "NOT CONFORMANT"
    NO_VERDICT = "NO VERDICT"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Verdict.CONFORMANT: ExitCode.OK,
            Verdict.NOT_CONFORMANT: ExitCode.NOT_CONFORMANT,
            Verdict.NO_VERDICT: ExitCode.NO_VERDICT,
        }[self]


@dataclass(frozen=True)
class RequirementResult:
    requirement: Requirement
    outcome: Outcome
    reason: str
    evaluations: int
    failures: int
    findings: tuple[Finding, ...]

    @property
    def is_warning(self) -> bool:
        return self.outcome is Outcome.FAIL and self.requirement.severity is Severity.SHOULD

    def to_json(self) -> dict[str, Any]:
        r = self.requirement
        return {
            "id": r.id,
            "severity": str(r.severity),
            "profile": str(r.profile),
            "title": r.title,
            "seed": r.seed,
            "source": r.source,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "evaluations": self.evaluations,
            "failures": self.failures,
            "findings": [f.to_json() for f in self.findings],
        }



@dataclass(frozen=True)
class RunResult:
    """Everything a report needs about one run."""

    suite_version: str
    fragment_version: str
    fragment_sha256: str
    target_url: str
    embedded_target: bool
    profile: str
    seed: int
    max_examples: int
    started_at: str
    finished_at: str
    duration_seconds: float
    requests_sent: int
    exchanges_checked: int
    results: tuple[RequirementResult, ...]
    notes: tuple[str, ...] = ()
    strict: bool = False
    certify: bool = False
    product: dict[str, Any] | None = None
    defects: tuple[str, ...] = ()
    # Why the run ended before it could judge (target went away, interrupted): NO VERDICT.
    stopped: str | None = None
    # The contract the checks read (`run --spec FILE`); version and sha256 default to the fragment's.
    contract_title: str = ""
    contract_version: str = ""
    contract_sha256: str = ""
    contract_source: str | None = None  # the document's file name; None: the shipped fragment

    def __post_init__(self) -> None:
        # Frozen: fill the defaults in place, so every report reads one set of fields.
        if not self.contract_version:
            object.__setattr__(self, "contract_version", self.fragment_version)
        if not self.contract_sha256:
            object.__setattr__(self, "contract_sha256", self.fragment_sha256)

    @property
    def contract(self) -> dict[str, Any]:
        """What was certified against: title, version, sha256 of the file as given, its name."""
        return {"title": self.contract_title, "version": self.contract_version, "sha256": self.contract_sha256,
                "source": self.contract_source}
    # The shell command that re-runs this run (same seed, profile and options; secrets as
    # environment references), and how to get a token for it: shown in every report.
    rerun: str | None = None
    rerun_notes: tuple[str, ...] = ()
    # How the target cancels: {"mode": "synchronous"|"asynchronous"|None, "settle_seconds": float|None}.
    cancel_mode: dict[str, Any] | None = None
    # BEH-STATEFUL: how often each rule of the state machine ran.
    stateful_rules: dict[str, int] | None = None
    # Which ids the run sent: {"distinct_ids": n, "deletes": n, "classes": {corpus class: ids}}.
    coverage: dict[str, Any] | None = None
    # What the target did, by id class and task status (engine.behaviour): profile.json.
    behaviour: dict[str, Any] | None = None
    # Every exchange, redacted, for recording.har (empty: nothing to record).
    recording: tuple[RecordedExchange, ...] = ()

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def failed_must(self) -> list[RequirementResult]:
        return [r for r in self.results if r.outcome is Outcome.FAIL and r.requirement.severity is Severity.MUST]

    @property
    def warnings(self) -> list[RequirementResult]:
        return [r for r in self.results if r.is_warning]

    @property
    def unproven_must(self) -> list[RequirementResult]:
        """MUST requirements not exercised and passed: what --certify refuses."""
        return [
            r for r in self.results if r.requirement.severity is Severity.MUST and r.outcome is not Outcome.PASS
        ]

    @property
    def exercised(self) -> bool:
        """At least one MUST requirement was evaluated: a run that judged nothing proves nothing."""
        return any(
            r.requirement.severity is Severity.MUST and r.outcome in (Outcome.PASS, Outcome.FAIL)
            for r in self.results
        )

    @property
    def conformant(self) -> bool:
        if self.failed_must or not self.exercised:
            return False
        if self.strict and self.warnings:
            return False
        return not (self.certify and self.unproven_must)

    @property
    def must_not_run(self) -> list[RequirementResult]:
        """Selected MUST requirements that were never evaluated: said next to the verdict."""
        return [
            r for r in self.results if r.requirement.severity is Severity.MUST and r.outcome is Outcome.NOT_RUN
        ]

    @property
    def verdict(self) -> Verdict:
        if self.stopped is not None:
            return Verdict.NO_VERDICT
        return Verdict.CONFORMANT if self.conformant else Verdict.NOT_CONFORMANT

    @property
    def headline(self) -> str:
        """The verdict with what a reader must not miss: e.g. "CONFORMANT, 5 MUST requirements not run"."""
        text = str(self.verdict)
        if self.stopped is not None:
            return f"{text} ({self.stopped})"
        missing = len(self.must_not_run)
        if missing:
            text += f", {missing} MUST requirement{'s' if missing != 1 else ''} not run"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "suite_version": self.suite_version,
            "fragment": {"version": self.fragment_version, "sha256": self.fragment_sha256},
            "contract": self.contract,
            "target": {"url": self.target_url, "embedded": self.embedded_target, "product": self.product},
            "profile": self.profile,
            "seed": self.seed,
            "max_examples": self.max_examples,
            "strict": self.strict,
            "certify": self.certify,
            "defects": list(self.defects),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": round(self.duration_seconds, 3),
            "requests_sent": self.requests_sent,
            "exchanges_checked": self.exchanges_checked,
            "verdict": str(self.verdict),
            "headline": self.headline,
            "stopped": self.stopped,
            "rerun": self.rerun,
            "rerun_notes": list(self.rerun_notes),
            "cancel_mode": self.cancel_mode or {"mode": None, "settle_seconds": None},
            "stateful_rules": dict(self.stateful_rules or {}),
            "counts": {str(o): self.count(o) for o in Outcome},
            "notes": list(self.notes),
            "requirements": [r.to_json() for r in self.results],
            **({"coverage": self.coverage} if self.coverage is not None else {}),
        }

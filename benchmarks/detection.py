"""Detection matrix: run the suite against every reference-server defect and judge each verdict.

    python -m benchmarks.detection [--only NAME[,NAME]] [--max-examples N] [--seed N] [--timeout S] [NAME ...]

Each defect of `conformance.reference.defects.DEFECTS` says what the suite must conclude
(`expect`) and which requirements must fail. The WHOLE verdict is judged: the set of MUST and
SHOULD requirements with outcome FAIL must EQUAL the entry's `requirements` ("fail", "warn") or be
empty ("pass"). Any other failure is a false positive and makes the row wrong. A row is right when:

- "fail": the run is not conformant and the failed set is exactly the listed requirements; a
  hostile defect that lists none counts as detected when the run ends with "stopped answering"
  (exit 3);
- "warn": the run is conformant, the failed set is exactly the listed (SHOULD) requirements, and
  the same result is not conformant under --strict;
- "pass": the run is conformant and no MUST or SHOULD requirement FAILs.

Besides, when `EVIDENCE` names substrings for a defect, every expected failure must carry at least
one FAIL finding whose summary or violations mention one of them (the status code, the JSON path),
so a requirement failing for an unrelated reason does not count as detecting the defect.

Exits 1 when any row is wrong, so the matrix doubles as a regression gate; the last line is
`detection: K/N verdicts right`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.engine.target import TargetError, TargetStoppedAnswering
from conformance.model import Level, Outcome, Severity
from conformance.options import RunOptions
from conformance.outcome import RequirementResult, RunResult
from conformance.reference.defects import CATEGORIES, DEFECTS, Defect

# Enough generated ids for every id-dependent defect (odd-id-400 needs odd characters) while the
# whole matrix stays around a minute.
DEFAULT_MAX_EXAMPLES = 40
DEFAULT_SEED = 1
# Short, so slow-responses ends quickly; far above what the embedded server needs per request.
DEFAULT_TIMEOUT = 2.0
# --timeout bounds the whole answer: huge-error-body's 30 MB answers (16 MiB read of each), eight
# at a time from the server in this process (it shares the interpreter lock with the readers),
# take several seconds on a busy machine. Its row is about the body, not about slow answers, so it
# gets the default --timeout (slow-responses must keep the short one to end quickly).
TIMEOUTS: dict[str, float] = {"huge-error-body": 10.0}

# What the issue asks the catalogue to cover.
MIN_DETECTED = 25
MIN_VARIATIONS = 5
REQUIRED_CATEGORIES = ("status", "error-schema", "content-type", "behaviour", "concurrency", "auth")


# What each defect's expected failures must mention: the defect's own evidence (a status code, a
# JSON path, a media type). Kept here because the catalogue (reference/defects.py) belongs to the
# reference server; a defect without an entry is judged on its failed set only.
EVIDENCE: dict[str, tuple[str, ...]] = {
    # status codes: the undocumented code itself
    "wrong-success-status": ("204",),
    "odd-id-400": ("status 400",),
    "html-500": ("500",),
    "unknown-id-500": ("500",),
    "accepted-202": ("202",),
    "redirect-cancel": ("307",),
    "reserved-char-500": ("500",),
    "unknown-uuid-400": ("400",),
    "generated-204": ("204",),
    # Error schema: the JSON path or the parse failure
    "missing-error-body": ("the body is empty",),
    "plain-text-error": ("not JSON",),
    "error-wrong-type-top": ("/message: 7 is not of type 'string'",),
    "error-wrong-type-nested": ("/nestedErrors/0/nestedErrors/0/nestedErrors/0/errorCode",),
    "error-bad-cause": ("/causes/1/message", "/causes/1/type"),
    "error-as-array": ("is not of type 'object'",),
    "context-not-object": ("/context",),
    "arguments-not-strings": ("/arguments/0",),
    "nested-errors-not-array": ("is not of type 'array'",),
    "error-null-fields": ("/errorType", "/remediationMessage"),
    "invalid-json-error": ("not JSON",),
    "json-error-as-text-plain": ("text/plain",),
    "success-with-body": ("200 carries a",),
    # behaviour: the wrong answer or the wrong state read back
    "cancel-finished-task": ("answered 200, not 409",),
    "pending-cancellable": ("PENDING task",),
    "recancel-200": ("answered 200, not 409",),
    "cancel-not-applied": ("reads IN_PROGRESS, not CANCELLED",),
    "forget-cancelled": ("404",),
    "unknown-id-409": ("answered 409",),
    "unknown-id-200": ("answered 200",),
    "cancel-wrong-task": ("also cancelled",),
    "cancel-never-settles": ("IN_PROGRESS",),
    "refused-cancel-changes-task": ("reads CANCELLED after the cancel",),
    "vanish-after-409": ("404",),
    "racing-cancels": ("[200, 200",),
    "race-zero-winners": ("409",),
    "race-404-losers": ("404",),
    # identity: the near-miss family that reached the task, by the description a failure names it with
    "trim-ids": ("[whitespace-trim]",),
    "pad-space-ids": ("[pad-space]",),
    "case-insensitive-ids": ("[case-insensitive]",),
    "prefix-ids": ("[prefix-match]",),
    "truncated-ids": ("[truncation]",),
    "like-ids": ("[like-wildcard]",),
    "numeric-ids": ("[numeric-parse]",),
    "double-decoded-ids": ("[double-decode]",),
    "path-parameter-ids": ("[path-parameter]",),
    "plus-space-ids": ("[plus-as-space]",),
    "accent-insensitive-ids": ("[accent-insensitive]",),
    "invisible-char-ids": ("[invisible-characters]",),
    "nfkc-ids": ("[nfkc]",),
    "nfc-ids": ("[nfc-nfd]",),
    "nul-truncated-ids": ("[nul-truncation]",),
    "auth-ignored": ("not 401/403",),
    "any-bearer-accepted": ("not 401/403",),
    # hostile bodies: the limit that was hit
    "huge-error-body": ("larger than the suite reads",),
    "deep-invalid-nesting": ("levels deep",),
    "deep-valid-nesting-10k": ("levels deep",),
    "invalid-utf8-error": ("not valid UTF-8",),
    "redirect-other-host": ("127.0.0.2", "302"),
}

# Severities whose failures make up the judged set: a MAY never fails a run, so it is not judged.
JUDGED_SEVERITIES = (Severity.MUST, Severity.SHOULD)


@dataclass(frozen=True)
class Expectation:
    """What the matrix demands of one catalogue entry."""

    name: str
    expect: str
    requirements: frozenset[str]
    evidence: tuple[str, ...] = ()

    @classmethod
    def of(cls, defect: Defect) -> Expectation:
        wanted = frozenset(defect.requirements) if defect.expect in ("fail", "warn") else frozenset()
        return cls(defect.name, defect.expect, wanted, EVIDENCE.get(defect.name, ()))


@dataclass(frozen=True)
class Row:
    defect: str
    category: str
    expected: str
    verdict: str
    failed: tuple[str, ...]
    requests: int
    seconds: float
    correct: bool
    why: str


def run_defect(
    defect: Defect,
    *,
    seed: int = DEFAULT_SEED,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    timeout: float = DEFAULT_TIMEOUT,
    settle_timeout: float | None = None,
    reference_settle_seconds: float | None = None,
) -> Row:
    """One run of the full suite against the embedded server with `defect` switched on.

    `settle_timeout` and `reference_settle_seconds` (None: the run's defaults, 5 s and 1 s) let the
    suite's own tests shrink both settle windows alike, so a row that waits them out is quicker.
    """
    timeout = max(timeout, TIMEOUTS.get(defect.name, timeout))
    options = RunOptions(seed=seed, max_examples=max_examples, defects=(defect.name,), timeout=timeout,
                         settle_timeout=settle_timeout, reference_settle_seconds=reference_settle_seconds)
    started = time.monotonic()
    run: RunResult | None = None
    error: TargetError | None = None
    requests = 0
    with open_session(options) as session:
        try:
            run = execute(session)
        except TargetError as exc:
            error = exc
        requests = session.target.requests_sent
    seconds = time.monotonic() - started
    correct, why = judge(defect, run, error)
    if run is not None:
        verdict = str(run.verdict)
        failed = tuple(r.requirement.id for r in run.results if r.outcome is Outcome.FAIL)
    else:
        verdict = "NO VERDICT (exit 3)"
        failed = ()
    return Row(defect.name, defect.category, defect.expect, verdict, failed, requests, seconds, correct, why)


def failed_set(run: RunResult) -> set[str]:
    """The MUST and SHOULD requirements the run failed: what the matrix compares with the catalogue."""
    return {r.requirement.id for r in run.results
            if r.outcome is Outcome.FAIL and r.requirement.severity in JUDGED_SEVERITIES}


def failure_texts(result: RequirementResult) -> list[str]:
    """Summaries and violations of a requirement's FAIL findings, plus its reason."""
    texts = [result.reason or ""]
    for finding in result.findings:
        if finding.level is Level.FAIL:
            texts.append(finding.summary)
            texts += [str(v) for v in finding.violations]
    return texts


def judge(defect: Defect, run: RunResult | None, error: TargetError | None,
          expectation: Expectation | None = None) -> tuple[bool, str]:
    """Whether the run's whole verdict is the one `defect` demands, and a short reason when it is not."""
    want = expectation or Expectation.of(defect)
    if run is None:
        # Only a target that stops answering may end a run without a verdict, and only when the
        # defect names no requirement a verdict would have to show.
        if want.expect == "fail" and not want.requirements and isinstance(error, TargetStoppedAnswering):
            return True, "stopped answering (exit 3)"
        return False, f"no verdict: {error}"
    failing = failed_set(run)
    problems = []
    extra = sorted(failing - want.requirements)
    missing = sorted(want.requirements - failing)
    if extra:
        problems.append(f"false positive: {', '.join(extra)}")
    if missing:
        problems.append(f"not failed: {', '.join(missing)}")
    if want.expect == "fail":
        if not want.requirements:
            problems.append("expected the target to be reported as stopped answering")
        if run.conformant:
            problems.append("judged conformant")
    elif want.expect == "warn":
        if not run.conformant:
            problems.append("not conformant")
        elif dataclasses.replace(run, strict=True).conformant:
            problems.append("still conformant under --strict")
    elif not run.conformant:
        problems.append(f"judged {run.verdict}")
    if want.evidence:
        results = {r.requirement.id: r for r in run.results}
        for rid in sorted(want.requirements & failing):
            texts = failure_texts(results[rid])
            if not any(e in t for t in texts for e in want.evidence):
                problems.append(f"{rid} fails without mentioning {' or '.join(repr(e) for e in want.evidence)}")
    return (not problems), "; ".join(problems)


def matrix(
    names: Iterable[str] | None = None,
    *,
    seed: int = DEFAULT_SEED,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Row]:
    chosen = list(names) if names else list(DEFECTS)
    return [run_defect(DEFECTS[n], seed=seed, max_examples=max_examples, timeout=timeout) for n in chosen]


def coverage_problems(defects: Iterable[Defect] | None = None) -> list[str]:
    """What the catalogue lacks against the issue's demand; empty when it covers everything."""
    catalogue = list(defects if defects is not None else DEFECTS.values())
    problems = []
    detected = [d for d in catalogue if d.expect in ("fail", "warn")]
    variations = [d for d in catalogue if d.expect == "pass"]
    if len(detected) < MIN_DETECTED:
        problems.append(f"only {len(detected)} defects to detect; at least {MIN_DETECTED} wanted")
    if len(variations) < MIN_VARIATIONS:
        problems.append(f"only {len(variations)} legitimate variations; at least {MIN_VARIATIONS} wanted")
    present = {d.category for d in catalogue}
    problems += [f"no defect in category {c!r}" for c in REQUIRED_CATEGORIES if c not in present]
    problems += [f"unknown category {d.category!r} of {d.name}" for d in catalogue if d.category not in CATEGORIES]
    error_parts = {
        "top level": "error-wrong-type-top",
        "nested": "error-wrong-type-nested",
        "causes": "error-bad-cause",
        "context": "context-not-object",
    }
    names = {d.name for d in catalogue}
    problems += [f"no Error-schema defect for {part} ({name})" for part, name in error_parts.items()
                 if name not in names]
    return problems


def render(rows: Sequence[Row]) -> str:
    header = ("defect", "category", "expect", "verdict", "requirements failed", "requests", "seconds", "")
    lines = [
        (r.defect, r.category, r.expected, r.verdict, ", ".join(r.failed) or "-", str(r.requests),
         f"{r.seconds:.1f}", "ok" if r.correct else f"WRONG: {r.why}")
        for r in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    # The reason column is last and left unpadded.
    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)) + "  " + cells[-1]

    out = [fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(line) for line in lines]
    wrong = sum(not r.correct for r in rows)
    by_category = Counter(r.category for r in rows)
    out.append("")
    out.append(
        f"{len(rows) - wrong}/{len(rows)} verdicts right; "
        f"{sum(r.requests for r in rows)} requests in {sum(r.seconds for r in rows):.1f} s; "
        + ", ".join(f"{c} {n}" for c, n in by_category.items())
    )
    return "\n".join(out)


def summary_line(rows: Sequence[Row]) -> str:
    """The last line of the matrix, for people and for scripts that grep it."""
    return f"detection: {sum(r.correct for r in rows)}/{len(rows)} verdicts right"


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="defects to run [default: all]")
    parser.add_argument("--only", type=_names, action="extend", default=[], metavar="NAME[,NAME]",
                        help="run only these catalogue entries (repeatable, comma-separated)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    # Order kept, duplicates dropped: `--only a,b a` runs a and b once each.
    chosen = list(dict.fromkeys([*args.names, *args.only]))
    unknown = [n for n in chosen if n not in DEFECTS]
    if unknown:
        parser.error(f"unknown defect(s): {', '.join(unknown)}")
    problems = [] if chosen else coverage_problems()
    rows = matrix(chosen, seed=args.seed, max_examples=args.max_examples, timeout=args.timeout)
    print(render(rows))
    for problem in problems:
        print(f"coverage: {problem}")
    print(summary_line(rows))
    return 1 if problems or not all(r.correct for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

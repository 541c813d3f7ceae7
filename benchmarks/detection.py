"""Detection matrix: run the suite against every reference-server defect and judge each verdict.

    python -m benchmarks.detection [--max-examples N] [--seed N] [--timeout S] [NAME ...]

Each defect of `conformance.reference.defects.DEFECTS` says what the suite must conclude
(`expect`) and which requirements must fail. A row is right when:

- "fail": the run is not conformant and every listed requirement has outcome FAIL; a hostile
  defect that lists none counts as detected when the run ends with "stopped answering" (exit 3);
- "warn": the run is conformant, every listed (SHOULD) requirement FAILs, and the same result
  is not conformant under --strict;
- "pass": the run is conformant and no requirement FAILs at all.

Exits 1 when any row is wrong, so the matrix doubles as a regression gate.
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
from conformance.model import Outcome
from conformance.options import RunOptions
from conformance.outcome import RunResult
from conformance.reference.defects import CATEGORIES, DEFECTS, Defect

# Enough generated ids for every id-dependent defect (odd-id-400 needs odd characters) while the
# whole matrix stays around a minute.
DEFAULT_MAX_EXAMPLES = 40
DEFAULT_SEED = 1
# Short, so slow-responses ends quickly; far above what the embedded server needs per request.
DEFAULT_TIMEOUT = 2.0

# What the issue asks the catalogue to cover.
MIN_DETECTED = 25
MIN_VARIATIONS = 5
REQUIRED_CATEGORIES = ("status", "error-schema", "content-type", "behaviour", "concurrency", "auth")


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
) -> Row:
    """One run of the full suite against the embedded server with `defect` switched on."""
    options = RunOptions(seed=seed, max_examples=max_examples, defects=(defect.name,), timeout=timeout)
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
        verdict = run.verdict
        failed = tuple(r.requirement.id for r in run.results if r.outcome is Outcome.FAIL)
    else:
        verdict = "NO VERDICT (exit 3)"
        failed = ()
    return Row(defect.name, defect.category, defect.expect, verdict, failed, requests, seconds, correct, why)


def judge(defect: Defect, run: RunResult | None, error: TargetError | None) -> tuple[bool, str]:
    """Whether the run's outcome is the one `defect` demands, and a short reason when it is not."""
    if run is None:
        # Only a target that stops answering may end a run without a verdict, and only when the
        # defect names no requirement a verdict would have to show.
        if defect.expect == "fail" and not defect.requirements and isinstance(error, TargetStoppedAnswering):
            return True, "stopped answering (exit 3)"
        return False, f"no verdict: {error}"
    outcomes = {r.requirement.id: r.outcome for r in run.results}
    missing = [rid for rid in defect.requirements if outcomes.get(rid) is not Outcome.FAIL]
    failing = sorted(rid for rid, outcome in outcomes.items() if outcome is Outcome.FAIL)
    if defect.expect == "fail":
        if run.conformant:
            return False, "judged conformant"
        if missing:
            return False, f"not failed: {', '.join(missing)}"
        return True, ""
    if defect.expect == "warn":
        if not run.conformant:
            return False, f"not conformant (failed: {', '.join(failing)})"
        if missing:
            return False, f"no warning from: {', '.join(missing)}"
        if dataclasses.replace(run, strict=True).conformant:
            return False, "still conformant under --strict"
        return True, ""
    if not run.conformant or failing:
        return False, f"false positive: {', '.join(failing) or run.verdict}"
    return True, ""


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="defects to run [default: all]")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in DEFECTS]
    if unknown:
        parser.error(f"unknown defect(s): {', '.join(unknown)}")
    problems = [] if args.names else coverage_problems()
    rows = matrix(args.names, seed=args.seed, max_examples=args.max_examples, timeout=args.timeout)
    print(render(rows))
    for problem in problems:
        print(f"coverage: {problem}")
    return 1 if problems or not all(r.correct for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

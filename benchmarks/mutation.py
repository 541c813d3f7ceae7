"""A small, self-contained mutation tester for the modules that decide verdicts.

    python -m benchmarks.mutation [--sample N] [--seed S] [--modules PATH[,PATH]] [--lines A-B[,C-D]]
                                  [--timeout S] [--list]

Each mutant is one small AST change to one module (a flipped comparison, a negated condition,
`and` <-> `or`, an integer constant off by one, a removed call statement, `Outcome.PASS` <->
`Outcome.FAIL`). It is written into a private copy of the repository (the working tree is never
touched) and judged by a fast selection of the suite's own tests, run with `pytest -x` under a
timeout: a mutant is "killed" when the tests fail (or time out), and "survives" when they all pass.
A survivor is a change to the verdict logic that no test notices: a test to write, or dead code.

The last line is `mutation score: K/N killed (P%)`; the survivors are listed above it as
`file:line: mutation`. Not part of .ci/run: it takes minutes, and the score is for people.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULES: tuple[str, ...] = (
    "conformance/requirements/checks.py",
    "conformance/requirements/scenarios.py",
    "conformance/requirements/stateful.py",
    "conformance/engine/recorder.py",
    "conformance/outcome.py",
    "conformance/bodies.py",
    "conformance/engine/generation.py",
    "conformance/identity.py",
    "conformance/engine/target.py",
    "conformance/engine/deadline.py",
    "conformance/engine/lanes.py",
    "conformance/engine/helper.py",
    "conformance/engine/draws.py",
    "conformance/engine/embedded.py",
)

# Fast tests (seconds, no end-to-end runs of the whole suite) that judge each module: unit tests,
# stub servers with injected clocks, and single scenarios against the reference server.
FAST = ("tests/test_checks.py", "tests/test_bodies.py", "tests/test_tasks.py")
TESTS: dict[str, tuple[str, ...]] = {
    # The unit tests of the URL-layer rule (not its end-to-end runs) judge refused_by_url_layer.
    "conformance/requirements/checks.py": (*FAST, *(f"tests/test_url_layer.py::{name}" for name in (
        "test_a_url_layer_refusal_of_a_hostile_id_is_information", "test_strict_urls_fails_the_refusal",
        "test_a_400_for_a_well_formed_id_still_fails", "test_other_answers_to_hostile_ids_are_judged_as_ever"))),
    "conformance/bodies.py": FAST,
    "conformance/engine/recorder.py": ("tests/test_recorder.py", *FAST),
    "conformance/outcome.py": ("tests/test_outcome.py", *FAST,
                               "tests/test_cli_flags.py::test_nothing_exercised_is_not_conformant_and_exits_1",
                               "tests/test_cli_flags.py::test_strict_and_certify_on_run_result"),
    # The whole-request deadline: the watchdog on socket pairs, the Target against trickling
    # stubs (not the command-line run).
    "conformance/engine/deadline.py": tuple(f"tests/test_deadline.py::{name}" for name in (
        "test_the_watchdog_cuts_a_blocked_read_at_the_deadline", "test_a_request_done_in_time_is_never_cut",
        "test_a_watch_before_any_connection_fires_without_cutting_anything", "test_the_thread_goes_away_when_idle",
        "test_a_trickle_is_cut_at_the_deadline", "test_a_slow_answer_within_the_deadline_is_judged",
        "test_a_login_that_trickles_is_cut_too",
        "test_once_the_target_is_declared_stopped_the_requests_under_way_are_cut")),
    "conformance/engine/target.py": ("tests/test_target.py", "tests/test_target_units.py",
                                     "tests/test_deadline.py::test_a_trickle_is_cut_at_the_deadline",
                                     "tests/test_deadline.py::test_once_the_target_is_declared_stopped_the_requests_under_way_are_cut",
                                     "tests/test_safety.py::test_rate_limit_spaces_requests",
                                     "tests/test_safety.py::test_no_rate_limit_never_sleeps",
                                     "tests/test_safety.py::test_rate_limit_does_not_wait_when_requests_are_already_spaced",
                                     # Backpressure against stub servers with an injected clock (not the run).
                                     *(f"tests/test_backpressure.py::{name}" for name in (
                                         "test_a_429_is_waited_out_and_the_same_request_re_sent",
                                         "test_retry_after_as_an_http_date_and_the_cap",
                                         "test_a_huge_retry_after_is_capped",
                                         "test_503_with_retry_after_is_backpressure_without_it_is_judged",
                                         "test_persistent_backpressure_ends_the_run_with_no_verdict",
                                         "test_retries_are_bounded_by_the_request_budget",
                                         "test_login_waits_out_backpressure_too", "test_backpressure_slows_the_run",
                                         "test_a_login_that_keeps_being_pushed_back_gives_up_after_the_retries",
                                         "test_the_run_speeds_up_again_once_the_target_stops_pushing_back",
                                         "test_answers_to_requests_already_in_flight_slow_the_run_down_once"))),
    # The corpus and near-miss unit tests of test_corpus.py (not its runs).
    "conformance/engine/generation.py": ("tests/test_generation.py",
                                         "tests/test_draws.py::test_without_a_child_the_ids_are_drawn_in_process",
                                         *(f"tests/test_corpus.py::{name}" for name in (
        "test_every_class_is_present", "test_every_delimiter_alone_and_embedded",
        "test_length_boundaries_count_encoded_bytes", "test_no_id_twice_on_the_wire_and_deterministic",
        "test_malformed_escapes_go_out_raw_and_are_url_hostile", "test_listed_ids_are_left_out",
        "test_near_misses_of_refusable_tasks_only", "test_near_misses_never_equal_a_listed_id"))),
    # The near-miss families, each against its reference lookup and through the schema phase's chain.
    "conformance/identity.py": ("tests/test_identity.py",),
    # Each scenario run on its own (reference server on an injected clock, or a scripted target).
    "conformance/requirements/scenarios.py": ("tests/test_scenario_units.py", "tests/test_stateful_units.py",
                                              "tests/test_settle_overlap.py"),
    "conformance/requirements/stateful.py": ("tests/test_stateful_units.py", "tests/test_settle_overlap.py"),
    # The lane and the task holds against scripted scenarios and a scripted target.
    "conformance/engine/lanes.py": ("tests/test_lanes.py", "tests/test_settle_overlap.py"),
    # The helper processes and their protocols (not the whole runs that use them).
    "conformance/engine/helper.py": ("tests/test_helper_process.py",),
    "conformance/engine/draws.py": tuple(f"tests/test_draws.py::{name}" for name in (
        "test_the_child_draws_distinct_ids_fixed_by_the_seed", "test_it_draws_twice_the_ids_needed_then_says_done",
        "test_a_child_that_dies_is_one_line_with_its_last_words", "test_an_error_it_reports_is_one_line",
        "test_the_child_ends_when_its_parent_dies", "test_the_child_sends_each_id_as_soon_as_it_is_drawn",
        "test_a_contract_the_child_cannot_load_is_one_line",
        "test_nothing_but_the_protocol_reaches_the_childs_stdout")),
    "conformance/engine/embedded.py": tuple(f"tests/test_embedded.py::{name}" for name in (
        "test_it_serves_the_reference_api_and_creates_tasks_on_request", "test_its_configuration_reaches_the_child",
        "test_a_refused_defect_is_the_users_mistake", "test_a_child_that_dies_is_one_line_with_its_last_words",
        "test_the_child_ends_when_its_parent_dies_without_stopping_it")),
}

# What the private copy needs for the tests above: the package, the tests, the fragment and the
# configuration pytest reads (pythonpath, markers).
COPIED = ("conformance", "tests", "openapi", "docs", "benchmarks", "pyproject.toml", "README.md")

_SWAPPED_COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
_SYMBOL = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # the n-th mutation site of the module, in the order _Mutator visits them
    line: int
    description: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.description}"


class _Mutator(ast.NodeTransformer):
    """Visits every mutation site in a fixed order; applies the one numbered `target` (if any)."""

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.sites: list[tuple[int, str]] = []
        self.applied = False

    def _site(self, node: ast.AST, description: str) -> bool:
        """Record a site; True when it is the one to mutate."""
        self.sites.append((getattr(node, "lineno", 0), description))
        hit = len(self.sites) - 1 == self.target
        self.applied = self.applied or hit
        return hit

    # Code that only exists for the type checker or for people is not behaviour.
    def visit_If(self, node: ast.If) -> ast.AST:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return node
        self.generic_visit(node)
        if self._site(node, f"if {ast.unparse(node.test)[:60]} -> if not (...)"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        self.generic_visit(node)
        if self._site(node, f"while {ast.unparse(node.test)[:60]} -> while not (...)"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        if self._site(node, f"... if {ast.unparse(node.test)[:60]} else ... -> if not (...)"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swapped = _SWAPPED_COMPARISONS.get(type(op))
            if swapped and self._site(node, f"{_SYMBOL[type(op)]} -> {_SYMBOL[swapped]} in "
                                            f"{ast.unparse(node)[:60]}"):
                node.ops[i] = swapped()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        if self._site(node, f"{old} -> {new} in {ast.unparse(node)[:60]}"):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and self._site(node, f"{value} -> {value + 1}"):
            return ast.copy_location(ast.Constant(value + 1), node)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "Outcome" and node.attr in ("PASS", "FAIL"):
            other = "FAIL" if node.attr == "PASS" else "PASS"
            if self._site(node, f"Outcome.{node.attr} -> Outcome.{other}"):
                node.attr = other
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        # A call made for its effect (appending a violation, recording a finding); docstrings and
        # bare constants are not statements that do anything.
        if isinstance(node.value, ast.Call):
            self.generic_visit(node)
            if self._site(node, f"remove `{ast.unparse(node)[:60]}`"):
                return ast.copy_location(ast.Pass(), node)
            return node
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        if self._site(node, f"remove `{ast.unparse(node)[:60]}`"):
            return ast.copy_location(ast.Pass(), node)
        return node

    # Annotations, decorators' registration metadata and docstrings carry no verdict logic.
    def visit_arg(self, node: ast.arg) -> ast.AST:
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.body = [self.visit(stmt) for stmt in node.body]
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        node.body = [self.visit(stmt) for stmt in node.body]
        return node


def mutants_of(module: str) -> list[Mutant]:
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    mutator = _Mutator()
    mutator.visit(tree)
    return [Mutant(module, i, line, text) for i, (line, text) in enumerate(mutator.sites)]


def mutated_source(mutant: Mutant, source: str) -> str:
    # `source`: the module as the private copy holds it. The working tree may be edited while a
    # long run goes on, and a mutation site counted in one version lands elsewhere in another.
    tree = ast.parse(source)
    mutator = _Mutator(mutant.index)
    tree = mutator.visit(tree)
    if not mutator.applied:
        raise RuntimeError(f"mutation site {mutant.index} of {mutant.module} not found")
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _copy_repository(destination: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "reports")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, destination / name)


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    killed: bool
    how: str  # "tests failed", "timeout", "survived", "does not import" ...
    seconds: float


def _pytest(copy: Path, tests: Sequence[str], timeout: float) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1",
           # Entry-point plugins (schemathesis, xdist ...) cost seconds of start-up per mutant and
           # the selected tests need none of them.
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-m", "not browser and not interop", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stdout[-2000:]


def run_mutant(mutant: Mutant, copy: Path, timeout: float) -> Result:
    target = copy / mutant.module
    original = target.read_bytes()
    started = time.monotonic()
    try:
        target.write_text(mutated_source(mutant, original.decode("utf-8")), encoding="utf-8")
        code, _ = _pytest(copy, TESTS.get(mutant.module, FAST), timeout)
    finally:
        target.write_bytes(original)
    seconds = time.monotonic() - started
    if code is None:
        return Result(mutant, True, "timeout", seconds)
    if code == 0:
        return Result(mutant, False, "survived", seconds)
    # 5: no tests collected (a bad selection), which must not count as a kill.
    if code == 5:
        return Result(mutant, False, "no tests ran", seconds)
    return Result(mutant, True, "tests failed", seconds)


def baseline_problems(copy: Path, modules: Sequence[str], timeout: float) -> list[str]:
    """The selected tests must pass on the unmutated copy, or every mutant would look killed."""
    problems = []
    for tests in dict.fromkeys(TESTS.get(m, FAST) for m in modules):
        code, output = _pytest(copy, tests, timeout)
        if code != 0:
            problems.append(f"tests fail without any mutation ({' '.join(tests)}): {output.strip()[-300:]}")
    return problems


def choose(modules: Sequence[str], sample: int | None, seed: int,
           lines: Sequence[range] | None = None) -> list[Mutant]:
    everything = [m for module in modules for m in mutants_of(module)
                  if lines is None or any(m.line in span for span in lines)]
    if sample is None or sample >= len(everything):
        return everything
    return sorted(random.Random(seed).sample(everything, sample), key=lambda m: (m.module, m.index))


def render(results: Sequence[Result]) -> Iterator[str]:
    survivors = [r for r in results if not r.killed]
    if survivors:
        yield f"survivors ({len(survivors)}):"
        for r in survivors:
            yield f"  {r.mutant}" + ("" if r.how == "survived" else f" [{r.how}]")
    killed = sum(r.killed for r in results)
    percent = 100.0 * killed / len(results) if results else 0.0
    yield f"mutation score: {killed}/{len(results)} killed ({percent:.0f}%)"


def _modules(value: str) -> list[str]:
    chosen = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in chosen if not (ROOT / m).is_file()]
    if unknown:
        raise argparse.ArgumentTypeError(f"no such module: {', '.join(unknown)}")
    return chosen


def _lines(value: str) -> list[range]:
    spans = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None or int(match.group(2) or match.group(1)) < int(match.group(1)):
            raise argparse.ArgumentTypeError(f"not a line or range of lines: {part!r}")
        spans.append(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    if not spans:
        raise argparse.ArgumentTypeError("no lines given")
    return spans


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=None, metavar="N", help="test N random mutants [default: all]")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sample [default: 0]")
    parser.add_argument("--modules", type=_modules, default=list(MODULES), metavar="PATH[,PATH]",
                        help="modules to mutate, relative to the repository root [default: the verdict modules]")
    parser.add_argument("--lines", type=_lines, default=None, metavar="A-B[,C-D]",
                        help="only the mutation sites on these lines of the chosen modules (what a change "
                             "touched) [default: every line]")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="seconds per mutant's tests; a timeout counts as killed [default: 120]")
    parser.add_argument("--list", action="store_true", help="list the chosen mutants, run nothing")
    args = parser.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    mutants = choose(args.modules, args.sample, args.seed, args.lines)
    if args.list:
        for mutant in mutants:
            print(mutant)
        print(f"{len(mutants)} mutants")
        return 0
    with tempfile.TemporaryDirectory(prefix="sddc-mutation-") as tmp:
        copy = Path(tmp)
        _copy_repository(copy)
        problems = baseline_problems(copy, sorted({m.module for m in mutants}), args.timeout)
        if problems:
            for problem in problems:
                print(f"mutation: {problem}", file=sys.stderr)
            return 2
        results = []
        for n, mutant in enumerate(mutants, 1):
            result = run_mutant(mutant, copy, args.timeout)
            results.append(result)
            print(f"[{n}/{len(mutants)}] {'killed  ' if result.killed else 'SURVIVED'} {mutant} "
                  f"({result.how}, {result.seconds:.1f} s)", flush=True)
    for line in render(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

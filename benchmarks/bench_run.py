"""The cost of a verdict: the suite against a plain request loop and against `st run`.

    python -m benchmarks.bench_run [--json reports/bench.json] [--skip-st]
    python -m benchmarks.bench_run --latency-ms 50 [--repeat 3] [--skip-st]   # a slow appliance, whole processes
    python -m benchmarks.bench_run --latency-ms 50 --only-settle [--settle-seconds 3]  # async and stdlib rows only

Measures, in one process:
  (a) the default full run against the embedded reference server (requests, wall, CPU);
  (b) a plain requests.Session loop sending as many DELETEs to the same kind of server (the floor);
  (c) schemathesis' `st run` on the same fragment: with a request count comparable to (a), and with
      its defaults; default checks and `--checks all`;
  (d) `st run` and the suite against defective servers: who notices what;
  (e) Error validation through the suite's own path (RecordedResponse.json + error_body_validates)
      for bodies from 1 KB to 10 MB, and for nesting from 1 to 10,000 levels.
With --latency-ms N, instead: every answer of the reference server waits N ms, and whole
processes are compared side by side in one run (start-up included): `sddc-conformance run` with
its default concurrency and with --concurrency 1, `st run` with its defaults, and a plain
requests loop sending the suite's DELETE count; plus requests, distinct ids and the time to the
first request. The same rows at 0 ms give the whole-process cost per request against the loop.
The suite, the loop and `st run` run --repeat times, interleaved, and each row shows its median
run: a single loop run varies by a third from one run to the next on a shared machine. Then
(--settle-seconds, default 3) the default run against targets whose cancels settle at once and
after S seconds, on the reference server and on benchmarks.stdlib_target (an independent
http.server target), with `st run` on the latter.
Nothing here asserts; the numbers are printed (and written as JSON with --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from benchmarks.detection import run_defect
from benchmarks.stdlib_target import StdlibTarget
from conformance.bodies import MAX_JSON_DEPTH, ensure_recursion_headroom
from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.model import Exchange, RecordedRequest, RecordedResponse
from conformance.options import RunOptions
from conformance.reference import DEFECTS, ReferenceConfig, ReferenceServer
from conformance.requirements.checks import CheckContext, error_body_validates
from conformance.spec import fragment_path

SEED = 1
# Defects schemathesis' stock checks are known (docs/SOURCES.md#stock-schemathesis-checks-replaced) or expected to miss.
ST_DEFECTS = ("success-with-body", "plain-text-error", "racing-cancels", "cancel-not-applied",
              "pending-cancellable")
# The coverage phase judges OPTIONS answers against a fragment that lists only DELETE, so even the
# faithful server fails this check; excluding it gives st a fair chance to pass a good server.
ST_FRAGMENT_FALSE_POSITIVE = "allow_header_conformance"
SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
DEPTHS = (1, 10, 100, 400, 499, 500, 1_000, 5_000, 10_000)


@dataclass(frozen=True)
class Timing:
    label: str
    requests: int
    wall: float
    cpu: float | None = None
    exit_code: int | None = None

    @property
    def per_request_ms(self) -> float:
        return 1000 * self.wall / max(self.requests, 1)


def _token(server: ReferenceServer) -> str:
    answer = requests.post(f"{server.base_url}/v1/tokens", timeout=10,
                           json={"username": server.config.username, "password": server.config.password})
    answer.raise_for_status()
    return str(answer.json()["accessToken"])


# -- (a) and (b) ------------------------------------------------------------------------------------

def suite_run(options: RunOptions | None = None) -> Timing:
    options = options or RunOptions(seed=SEED)
    wall, cpu = time.perf_counter(), time.process_time()
    with open_session(options) as session:
        run = execute(session)
    # process_time includes the embedded server's threads, as it does for the plain loop below.
    return Timing("suite (default full run)", run.requests_sent, time.perf_counter() - wall,
                  time.process_time() - cpu, 0 if run.conformant else 1)


def plain_loop(count: int) -> Timing:
    with ReferenceServer(ReferenceConfig()) as server, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {_token(server)}"
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            session.delete(f"{server.base_url}/v1/tasks/{uuid.uuid4()}", timeout=10).close()
        return Timing("plain requests.Session loop", count, time.perf_counter() - wall, time.process_time() - cpu)


# -- (c) and (d) ------------------------------------------------------------------------------------

def st_executable() -> str | None:
    beside = Path(sys.executable).with_name("st")
    return str(beside) if beside.exists() else shutil.which("st")


def st_run(st: str, label: str, *extra: str, defect: str | None = None) -> Timing:
    """One `st run` against a fresh reference server; requests are counted by the server itself."""
    config = ReferenceConfig(defects=frozenset({defect} if defect else set()))
    with ReferenceServer(config) as server, tempfile.TemporaryDirectory() as workdir:
        token = _token(server)
        before = len(server.request_log)
        command = [st, "run", str(fragment_path()), "--url", server.base_url,
                   "-H", f"Authorization: Bearer {token}", "--seed", str(SEED), *extra]
        wall = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=600)
        return Timing(label, len(server.request_log) - before, time.perf_counter() - wall,
                      exit_code=done.returncode)


# -- (e) --------------------------------------------------------------------------------------------

_ITEM = {"errorCode": "TA_NESTED", "message": "nested", "arguments": ["a"],
         "causes": [{"message": "cause", "type": "T"}], "context": {"k": "v"}}


def wide_error(size: int) -> bytes:
    """A valid Error of about `size` bytes: one top Error with many sibling nestedErrors."""
    per_item = len(json.dumps(_ITEM)) + 2
    return json.dumps({"message": "top", "nestedErrors": [_ITEM] * max(1, size // per_item)}).encode()


def deep_error(levels: int) -> bytes:
    """A valid chain of `levels` Errors, each the only nestedError of the one above."""
    return b'{"message": "m", "nestedErrors": [' * (levels - 1) + b'{"message": "bottom"}' + b"]}" * (levels - 1)


def judge_body(body: bytes) -> tuple[float, list[str]]:
    ctx = CheckContext.default()
    request = RecordedRequest("DELETE", "http://127.0.0.1/v1/tasks/x")
    response = RecordedResponse(404, "Not Found", {"Content-Type": "application/json"}, body, 0.0)
    started = time.perf_counter()
    violations = error_body_validates(ctx, Exchange(request, response)) or []
    return time.perf_counter() - started, [str(v)[:120] for v in violations]


def validation_by_size() -> list[dict[str, Any]]:
    rows = []
    for size in SIZES:
        body = wide_error(size)
        seconds, violations = judge_body(body)
        rows.append({"bytes": len(body), "seconds": seconds, "seconds_per_mb": seconds / (len(body) / 1e6),
                     "violations": violations})
    return rows


def validation_by_depth() -> list[dict[str, Any]]:
    rows = []
    for levels in DEPTHS:
        body = deep_error(levels)
        try:
            seconds, violations = judge_body(body)
            outcome = "finding" if violations else "valid"
        except Exception as exc:  # the point of the measurement: this must never happen
            seconds, violations, outcome = 0.0, [repr(exc)[:120]], "CRASH"
        rows.append({"levels": levels, "json_depth": 2 * levels - 1, "seconds": seconds, "outcome": outcome,
                     "violations": violations[:1]})
    return rows


# -- latency mode: whole processes against a slow target ------------------------------------------------

@dataclass(frozen=True)
class ProcessRun:
    label: str
    wall: float
    requests: int
    deletes: int
    distinct_ids: int
    first_request: float | None  # seconds from process start to the first request the server saw
    exit_code: int


@dataclass(frozen=True)
class Served:
    """A running target as the latency rows use it: the reference server or the stdlib one."""

    base_url: str
    username: str
    password: str
    state: dict[str, Any]  # what --tasks-file reads
    log: Callable[[], Sequence[Any]]  # the requests it saw: .timestamp (monotonic), .method, .path


Serve = Callable[[int], AbstractContextManager[Served]]


def embedded(settle_seconds: float | None = None) -> Serve:
    """The reference server; with `settle_seconds`, its correct asynchronous variation (a cancel
    reads IN_PROGRESS that long, a repeat cancel meanwhile answers 200)."""
    @contextmanager
    def serve(latency_ms: int) -> Iterator[Served]:
        config = ReferenceConfig(latency_ms=latency_ms) if settle_seconds is None else ReferenceConfig(
            latency_ms=latency_ms, defects=frozenset({"async-cancel-repeat-200"}), settle_seconds=settle_seconds)
        with ReferenceServer(config) as server:
            yield Served(server.base_url, server.config.username, server.config.password,
                         server.state_document(), lambda: server.request_log)
    return serve


def stdlib(settle_seconds: float = 0.0) -> Serve:
    """benchmarks.stdlib_target: an independent http.server target, not the suite's own server."""
    @contextmanager
    def serve(latency_ms: int) -> Iterator[Served]:
        with StdlibTarget(latency_ms=latency_ms, settle_seconds=settle_seconds) as target:
            yield Served(target.base_url, target.username, target.password, target.state_document(),
                         lambda: target.log)
    return serve


def _process_run(label: str, latency_ms: int, command: Callable[[Served, Path], list[str]],
                 env_extra: Callable[[Served], dict[str, str]] | None = None,
                 serve: Serve | None = None) -> ProcessRun:
    """One process against a fresh server (the reference one unless `serve` says otherwise);
    everything counted by the server itself."""
    import os

    with (serve or embedded())(latency_ms) as server, tempfile.TemporaryDirectory() as workdir:
        state = Path(workdir) / "state.json"
        state.write_text(json.dumps(server.state), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
               **(env_extra(server) if env_extra else {})}
        started = time.monotonic()
        done = subprocess.run(command(server, state), capture_output=True, text=True, cwd=workdir,
                              env=env, timeout=1800)
        wall = time.monotonic() - started
        log = [r for r in server.log() if r.timestamp >= started]
        deletes = [r for r in log if r.method == "DELETE"]
        return ProcessRun(label, wall, len(log), len(deletes), len({r.path for r in deletes}),
                          (log[0].timestamp - started) if log else None, done.returncode)


def _suite_command(*extra: str) -> Callable[[Served, Path], list[str]]:
    def command(server: Served, state: Path) -> list[str]:
        return [sys.executable, "-m", "conformance", "run", "--base-url", server.base_url,
                "--username", server.username, "--tasks-file", str(state), "--seed", str(SEED),
                "--quiet", "--report-dir", str(state.parent / "reports"), *extra]
    return command


def _password(server: Served) -> dict[str, str]:
    return {"SDDC_PASSWORD": server.password}


def _served_token(server: Served) -> str:
    answer = requests.post(f"{server.base_url}/v1/tokens", timeout=10,
                           json={"username": server.username, "password": server.password})
    answer.raise_for_status()
    return str(answer.json()["accessToken"])


_LOOP = """
import sys, uuid, requests
base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with requests.Session() as session:
    session.headers["Authorization"] = "Bearer " + token
    for _ in range(count):
        session.delete(base + "/v1/tasks/" + str(uuid.uuid4()), timeout=30).close()
"""


def _loop_command(count: int) -> Callable[[Served, Path], list[str]]:
    def command(server: Served, state: Path) -> list[str]:
        return [sys.executable, "-c", _LOOP, server.base_url, _served_token(server), str(count)]
    return command


def _st_command(st: str) -> Callable[[Served, Path], list[str]]:
    def command(server: Served, state: Path) -> list[str]:
        return [st, "run", str(fragment_path()), "--url", server.base_url,
                "-H", f"Authorization: Bearer {_served_token(server)}", "--seed", str(SEED)]
    return command


def _process_line(r: ProcessRun) -> str:
    first = f"{r.first_request:5.2f} s to 1st request" if r.first_request is not None else ""
    return (f"  {r.label:<44} {r.wall:7.2f} s wall {r.requests:>5} requests {r.deletes:>5} DELETEs "
            f"{r.distinct_ids:>5} distinct  {first}  exit {r.exit_code}")


def median_run(runs: Sequence[ProcessRun]) -> ProcessRun:
    """The run with the median wall time (the lower one of an even count), walls listed in its label."""
    ordered = sorted(runs, key=lambda r: r.wall)
    middle = ordered[(len(ordered) - 1) // 2]
    if len(runs) == 1:
        return middle
    walls = ", ".join(f"{r.wall:.2f}" for r in runs)
    return dataclasses.replace(middle, label=f"{middle.label} [median of {walls}]")


def latency_mode(latency_ms: int, st: str | None, echo: Callable[[str], None], repeat: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"latency_ms": latency_ms, "repeat": repeat}
    for latency in (latency_ms, 0):
        echo(f"\nwhole processes against a reference server adding {latency} ms to every answer")
        suites: list[ProcessRun] = []
        loops: list[ProcessRun] = []
        sts: list[ProcessRun] = []
        # Interleaved, so a busy spell on the machine lands on each kind of row alike.
        for _ in range(repeat):
            suites.append(_process_run("sddc-conformance run (default)", latency, _suite_command(), _password))
            loops.append(_process_run(f"plain requests loop ({suites[0].deletes} DELETEs)", latency,
                                      _loop_command(suites[0].deletes)))
            if st:
                sts.append(_process_run("st run (its defaults)", latency, _st_command(st)))
        suite, loop = median_run(suites), median_run(loops)
        st_row = median_run(sts) if sts else None
        sequential = _process_run("sddc-conformance run --concurrency 1", latency,
                                  _suite_command("--concurrency", "1"), _password)
        rows = [suite, sequential, loop]
        if st_row is not None:
            rows.append(st_row)
        for row in rows:
            echo(_process_line(row))
        per_request = (suite.wall / max(suite.requests, 1)) / (loop.wall / max(loop.requests, 1))
        echo(f"  suite per request over the plain loop (start-up included): {per_request:.2f}x")
        echo(f"  default concurrency over --concurrency 1: {suite.wall / sequential.wall:.2f}x wall")
        if st_row is not None:
            echo(f"  suite wall over st run wall: {suite.wall / st_row.wall:.2f}x")
        echo(f"  requests per verdict: {suite.requests}; DELETE paths sent more than once: "
             f"{suite.deletes - suite.distinct_ids} of {suite.deletes} (the scenarios' deliberate re-cancels)")
        if latency == 0:
            # The schema profile sends only the corpus, near-misses and generated ids (no scenario
            # repeats a cancel): every DELETE path the server saw twice is a duplicate generated id.
            schema = _process_run("sddc-conformance run --profile schema", latency,
                                  _suite_command("--profile", "schema"), _password)
            echo(_process_line(schema))
            echo(f"  generated ids sent twice (schema profile): {schema.deletes - schema.distinct_ids} "
                 f"of {schema.deletes} DELETEs")
            # The same measure without the behaviour scenarios, whose end-of-run re-read waits until
            # the first task of each kind of touch is 2 s old: the suite's own cost per request.
            schema_per_request = (schema.wall / max(schema.requests, 1)) / (loop.wall / max(loop.requests, 1))
            echo(f"  schema profile per request over the plain loop (start-up included): {schema_per_request:.2f}x")
            rows.append(schema)
        out[str(latency)] = [asdict(r) for r in rows]
    return out


def settle_mode(latency_ms: int, settle_seconds: float, st: str | None, echo: Callable[[str], None],
                repeat: int = 1) -> dict[str, Any]:
    """The default run against targets whose cancels settle at once and after `settle_seconds`, on
    the reference server and on the independent stdlib one, and `st run` on the stdlib one."""
    echo(f"\nwhole processes at {latency_ms} ms: cancels settling at once and after {settle_seconds:g} s, on the "
         "reference server and on benchmarks.stdlib_target (http.server)")
    kinds: list[tuple[str, Serve]] = [
        ("reference, synchronous", embedded()),
        (f"reference, settles in {settle_seconds:g} s", embedded(settle_seconds)),
        ("stdlib, synchronous", stdlib()),
        (f"stdlib, settles in {settle_seconds:g} s", stdlib(settle_seconds))]
    runs: dict[str, list[ProcessRun]] = {label: [] for label, _ in kinds}
    sts: list[ProcessRun] = []
    # Interleaved, so a busy spell on the machine lands on each kind of row alike.
    for _ in range(repeat):
        for label, serve in kinds:
            runs[label].append(_process_run(f"suite: {label}", latency_ms, _suite_command(), _password, serve))
        if st:
            sts.append(_process_run("st run (its defaults): stdlib, synchronous", latency_ms, _st_command(st),
                                    serve=stdlib()))
    rows = {label: median_run(r) for label, r in runs.items()}
    st_row = median_run(sts) if sts else None
    for row in [*rows.values(), *([st_row] if st_row else [])]:
        echo(_process_line(row))
    (ref_sync, ref_async, std_sync, std_async) = (rows[label] for label, _ in kinds)
    out: dict[str, Any] = {"latency_ms": latency_ms, "settle_seconds": settle_seconds,
                           "rows": [asdict(r) for r in rows.values()],
                           "async_over_sync_reference": ref_async.wall / ref_sync.wall,
                           "async_over_sync_stdlib": std_async.wall / std_sync.wall}
    echo(f"  asynchronous over synchronous: {out['async_over_sync_reference']:.2f}x on the reference server, "
         f"{out['async_over_sync_stdlib']:.2f}x on the stdlib one (goal <= 1.5x)")
    if st_row is not None:
        out["st"] = asdict(st_row)
        out["suite_over_st_stdlib"] = std_sync.wall / st_row.wall
        echo(f"  suite wall over st run wall on the stdlib target: {out['suite_over_st_stdlib']:.2f}x (goal <= 0.5x)")
    return out


# -- report -----------------------------------------------------------------------------------------

def _line(t: Timing) -> str:
    cpu = f"{t.cpu:6.2f} s CPU" if t.cpu is not None else " " * 12
    code = f"exit {t.exit_code}" if t.exit_code is not None else ""
    return f"  {t.label:<52} {t.requests:>5} requests {t.wall:7.2f} s wall {cpu} {t.per_request_ms:6.2f} ms/req  {code}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_run", description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results here (e.g. reports/bench.json)")
    parser.add_argument("--skip-st", action="store_true", help="leave out the schemathesis CLI runs")
    parser.add_argument("--latency-ms", type=int, default=None,
                        help="compare whole processes against a server adding this many ms to every answer")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="with --latency-ms: run the suite, the loop and st N times each, interleaved, "
                             "and show each one's median run [default: 3]")
    parser.add_argument("--settle-seconds", type=float, default=3.0, metavar="S",
                        help="with --latency-ms: also compare targets whose cancels settle after S seconds with "
                             "synchronous ones, on the reference and the stdlib target (0: leave out) [default: 3]")
    parser.add_argument("--only-settle", action="store_true",
                        help="with --latency-ms: only the --settle-seconds rows")
    args = parser.parse_args(argv)
    ensure_recursion_headroom()
    out: dict[str, Any] = {}
    echo: Callable[[str], None] = print
    if args.latency_ms is not None:
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        if args.settle_seconds < 0 or (args.only_settle and not args.settle_seconds):
            parser.error("--settle-seconds must be positive (or 0 without --only-settle)")
        st = None if args.skip_st else st_executable()
        out = {} if args.only_settle else latency_mode(args.latency_ms, st, echo, args.repeat)
        if args.settle_seconds:
            out["settle"] = settle_mode(args.latency_ms, args.settle_seconds, st, echo, args.repeat)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        return 0

    echo("(a)/(b) the suite against the floor")
    # The first run in a process also pays one-time imports (schemathesis' OpenAPI machinery,
    # ~0.5 s): that is what one CLI invocation costs. The second is the steady state.
    cold = suite_run()
    suite = suite_run()
    loop = plain_loop(suite.requests)
    echo(_line(dataclasses.replace(cold, label="suite (default full run, first in process)")))
    for t in (suite, loop):
        echo(_line(t))
    overhead = suite.per_request_ms / loop.per_request_ms
    echo(f"  suite ms/request over plain loop: {overhead:.2f}x (target <= 3x); first run in process: "
         f"{cold.per_request_ms / loop.per_request_ms:.2f}x; CPU {suite.cpu or 0:.2f} s vs {loop.cpu or 0:.2f} s")
    out["suite_cold"], out["suite"], out["plain_loop"] = asdict(cold), asdict(suite), asdict(loop)
    out["overhead_ratio"] = overhead
    # The same run with one generated id: what is left is the fixed cost of a run (server start,
    # pytest collection, scenarios), so the difference prices one more generated request.
    small = suite_run(RunOptions(seed=SEED, max_examples=1))
    marginal = 1000 * (suite.wall - small.wall) / max(suite.requests - small.requests, 1)
    echo(_line(dataclasses.replace(small, label="suite, --max-examples 1 (fixed cost)")))
    echo(f"  marginal cost of a generated request: {marginal:.2f} ms = {marginal / loop.per_request_ms:.2f}x "
         "the plain loop")
    out["suite_fixed"], out["marginal_ms_per_request"] = asdict(small), marginal

    st = None if args.skip_st else st_executable()
    if st is not None:
        echo("\n(c) st run on the same fragment (faithful reference server)")
        # -n sized so st sends about as many requests as the suite (st adds a coverage phase).
        examples = str(max(1, suite.requests - 10))
        comparable = st_run(st, f"st run -n {examples} (default checks)", "-n", examples)
        comparable_all = st_run(st, f"st run -n {examples} --checks all", "-n", examples, "--checks", "all")
        defaults = st_run(st, "st run (its defaults)")
        for t in (comparable, comparable_all, defaults):
            echo(_line(t))
        echo(f"  suite wall over st run wall (comparable count): {suite.wall / comparable.wall:.2f}x "
             f"(target <= 0.5x); over st defaults: {suite.wall / defaults.wall:.2f}x")
        echo(f"  st verdict on the FAITHFUL server: exit {comparable.exit_code} "
             f"({'fails a conforming server' if comparable.exit_code else 'passes'}; "
             f"the coverage phase's {ST_FRAGMENT_FALSE_POSITIVE} check)")
        out["st"] = [asdict(t) for t in (comparable, comparable_all, defaults)]

        echo("\n(d) who notices which defect (st exit 0 = passed the defective server)")
        fair = ("--exclude-checks", ST_FRAGMENT_FALSE_POSITIVE)
        baseline = st_run(st, "faithful", "-n", examples, *fair)
        echo(f"  st --exclude-checks {ST_FRAGMENT_FALSE_POSITIVE} on the faithful server: exit {baseline.exit_code}")
        detection = []
        for name in ST_DEFECTS:
            st_default = st_run(st, name, "-n", examples, *fair, defect=name)
            st_all = st_run(st, name, "-n", examples, "--checks", "all", "--exclude-checks",
                            ST_FRAGMENT_FALSE_POSITIVE, defect=name)
            row = run_defect(DEFECTS[name])
            detection.append({"defect": name, "st_default_exit": st_default.exit_code,
                              "st_all_exit": st_all.exit_code, "suite_verdict": row.verdict,
                              "suite_failed": list(row.failed), "suite_right": row.correct})
            echo(f"  {name:<22} st default checks: {'FAIL' if st_default.exit_code else 'pass'}   "
                 f"st --checks all: {'FAIL' if st_all.exit_code else 'pass'}   "
                 f"suite: {row.verdict} ({', '.join(row.failed) or '-'})")
        out["detection"] = detection
    elif not args.skip_st:
        echo("\n(c)/(d) skipped: no `st` executable found")

    echo("\n(e) Error validation through RecordedResponse.json + error_body_validates")
    sizes = validation_by_size()
    for entry in sizes:
        echo(f"  {entry['bytes']:>10} bytes  {entry['seconds']:8.4f} s  {entry['seconds_per_mb']:7.3f} s/MB  "
             f"{'valid' if not entry['violations'] else entry['violations'][0]}")
    big = [r for r in sizes if r["bytes"] >= 1_000_000]
    if len(big) >= 2:
        echo(f"  s/MB at {big[-1]['bytes']:,} bytes over s/MB at {big[0]['bytes']:,} bytes: "
             f"{big[-1]['seconds_per_mb'] / big[0]['seconds_per_mb']:.2f} (1.0 = linear)")
    depths = validation_by_depth()
    for entry in depths:
        echo(f"  {entry['levels']:>6} levels (JSON depth {entry['json_depth']:>6}, limit {MAX_JSON_DEPTH})  "
             f"{entry['seconds']:8.4f} s  {entry['outcome']}"
             + (f": {entry['violations'][0]}" if entry["violations"] else ""))
    out["validation_by_size"], out["validation_by_depth"] = sizes, depths

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        echo(f"\nresults written to {args.json}")
    return 1 if any(r["outcome"] == "CRASH" for r in depths) else 0


if __name__ == "__main__":
    sys.exit(main())

"""What the behaviour profile and `run --record` cost: a default run's exchanges replayed.

    python -m benchmarks.recording                 # default run: --max-examples 150, seed 1
    python -m benchmarks.recording --repeat 9

One real run in-process against the embedded reference server records its exchanges; they are then
fed through `BehaviourObserver.observe` again, profile only and with the recording, each body
decoded first (the checks and scenarios decode every body anyway), and the HAR is written. Prints
the median CPU time of each beside the run's own wall time, as ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from conformance.engine.behaviour import BehaviourObserver
from conformance.engine.runner import execute
from conformance.engine.session import open_session
from conformance.model import Exchange
from conformance.options import RunOptions
from conformance.report.har import write_har


def _fresh(exchanges: list[Exchange]) -> list[Exchange]:
    out = [dataclasses.replace(e, response=dataclasses.replace(e.response)) if e.response else e for e in exchanges]
    for exchange in out:
        if exchange.response is not None:
            exchange.response.json  # noqa: B018 - decoded as the checks would, before the observer sees it
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-examples", type=int, default=150)
    args = parser.parse_args()
    with open_session(RunOptions(seed=1, max_examples=args.max_examples, record=True)) as session:
        run = execute(session)
    exchanges = [r.exchange for r in run.recording]
    timings: dict[str, list[float]] = {"profile only": [], "profile + recording": [], "write recording.har": []}
    for _ in range(args.repeat):
        for name, record in (("profile only", False), ("profile + recording", True)):
            batch = _fresh(exchanges)
            observer = BehaviourObserver(secrets=lambda: ("a-token-value-123456", "a-password"), record=record)
            started = time.process_time()
            for exchange in batch:
                observer.observe(exchange)
            timings[name].append(time.process_time() - started)
        with tempfile.TemporaryDirectory() as directory:
            started = time.process_time()
            write_har(run, Path(directory))
            timings["write recording.har"].append(time.process_time() - started)
    print(f"{len(exchanges)} exchanges; the run took {run.duration_seconds:.2f} s of wall time")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:22} {median * 1000:7.1f} ms CPU  ({median / run.duration_seconds:.1%} of the run's wall time)")


if __name__ == "__main__":
    main()

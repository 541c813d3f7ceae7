"""Generated ids drawn in a child process: `python -m conformance.engine.draws`.

Hypothesis' exploration needs no answer from the target, only the run's seed and the contract.
In the suite's own process, Schemathesis' import, its OpenAPI loading and the drawing cost about
a second of CPU on a default run, under the interpreter lock the sending threads need. The
command line starts this process first, so the ids are drawn on another core while the suite
loads and the session opens; the schema phase then reads them as they come.

Protocol, one JSON value a line. Stdin: ``{"seed": int, "total": int, "spec": path | null}``.
Stdout: ``[encoded, origin]`` for each distinct id in drawing order, then ``{"done": true}``;
a contract it cannot load is ``{"error": "..."}``. The parent skips ids it sent already (the
corpus, near-misses) and known task ids, so the child draws twice the ids needed: a full pipe
pauses it, and the parent ends it once it has enough.

Imports stay light at module level: the parent imports this before pytest and Hypothesis load.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from conformance.engine.helper import HelperProcess
from conformance.errors import SuiteCrashed
from conformance.text import clean_line


class DrawnIds:
    """The parent's handle: start at once, read `pairs()` later, `stop()` in any case."""

    def __init__(self, seed: int, total: int, spec: Path | None = None) -> None:
        self._helper = HelperProcess("conformance.engine.draws", "the process that draws generated ids")
        self._helper.send({"seed": seed, "total": total, "spec": None if spec is None else str(spec)}, last=True)

    @property
    def process(self) -> Any:
        return self._helper.process

    def pairs(self) -> Iterator[tuple[str, str]]:
        """(encoded id, origin) in drawing order, until the child has drawn all it will."""
        while (message := self._helper.receive()) is not None:
            if isinstance(message, list):
                yield str(message[0]), str(message[1])
            elif message.get("done"):
                return
            else:
                raise SuiteCrashed(f"drawing generated ids failed: {clean_line(str(message.get('error')))}")
        raise self._helper.stopped()

    def stop(self) -> None:
        """End it at once: what it would still draw is not needed."""
        self._helper.stop()


def draw(request: dict[str, Any], out: IO[str]) -> None:
    """The child's work: explore with the run's seed, write each distinct id as it is drawn."""
    from conformance.contract import run_contract
    from conformance.engine import generation
    from conformance.errors import SddcError

    try:
        contract = run_contract(request.get("spec"))
    except SddcError as exc:
        # The parent loads the same contract and says why in its own words; this only ends here.
        out.write(json.dumps({"error": str(exc)}) + "\n")
        return
    seen: set[str] = set()

    def take(probe: generation.Probe) -> bool:
        if probe.encoded in seen:
            return False
        seen.add(probe.encoded)
        out.write(json.dumps([probe.encoded, probe.origin]) + "\n")
        # Each id as soon as it is drawn: the parent sends while the drawing goes on.
        out.flush()
        return True

    generation.explore(int(request["seed"]), 2 * int(request["total"]), take, contract)
    out.write(json.dumps({"done": True}) + "\n")


def main() -> int:
    # The protocol owns stdout: anything else that prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # A parent that has all the ids it needs, or died, closed the pipe: the end, not an error.
    with contextlib.suppress(BrokenPipeError), out:
        # Hypothesis' caches go where HYPOTHESIS_STORAGE_DIRECTORY, set by the parent, says.
        line = sys.stdin.readline()
        if line:
            draw(json.loads(line), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The embedded reference server in a process of its own: `python -m conformance.reference.child`.

`conformance.engine.embedded` starts it for `sddc-conformance run` without a target. In the
suite's own process the server's work (HTTP parsing, routing, JSON) took the interpreter lock
from the suite for about 1.5 ms a request; here it runs on another core.

The protocol is one JSON object per line:

- stdin, first line: ``{"defects": [...], "settle_seconds": float | null}``;
- stdout, the answer: ``{"state": <ReferenceServer.state_document()>}`` once listening, or
  ``{"error": "..."}`` for a configuration the server refuses (then the process exits 2);
- stdin, then: ``{"create_tasks": [status, count]}``, answered with ``{"ids": [...]}``.

The end of stdin stops the server: the parent closes it when the run ends, and the operating
system closes it when the parent dies, however it dies. So no signal is needed, and the parent
starts this process in a session of its own, out of reach of the terminal's Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any, TextIO

from .app import ReferenceConfig
from .server import ReferenceServer


def _reply(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(requests: TextIO, out: TextIO) -> int:
    """Answer the parent's requests until `requests` ends; the exit status."""
    first = requests.readline()
    if not first:
        return 0
    settings = json.loads(first)
    try:
        config = ReferenceConfig(defects=frozenset(settings.get("defects", ())))
        if settings.get("settle_seconds") is not None:
            config = dataclasses.replace(config, settle_seconds=float(settings["settle_seconds"]))
    except ValueError as exc:
        _reply(out, {"error": str(exc)})
        return 2
    server = ReferenceServer(config).start()
    try:
        _reply(out, {"state": server.state_document()})
        for line in requests:
            status, count = json.loads(line)["create_tasks"]
            _reply(out, {"ids": server.create_tasks(str(status), int(count))})
    finally:
        server.stop()
    return 0


def main() -> int:
    # The protocol owns stdout: anything else that prints (a library's warning) goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with out:
        return serve(sys.stdin, out)


if __name__ == "__main__":
    sys.exit(main())

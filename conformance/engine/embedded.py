"""The embedded reference server of `sddc-conformance run`, in a child process.

Started first, before the run imports pytest, Hypothesis and Schemathesis, it gets ready on
the machine's other core while they load; then its work per request no longer shares this
process's interpreter lock with the suite. Imports here stay light for that reason: the
reference package (uvicorn, Starlette) loads in the child only.

In-process callers (the pytest plugin, the tests) keep the in-thread `ReferenceServer`, whose
store and request log they can look at.
"""

from __future__ import annotations

import threading
from typing import Any

from conformance.engine.helper import HelperProcess
from conformance.errors import OptionsError


class EmbeddedServer:
    """A handle on `python -m conformance.reference.child`; see that module for the protocol."""

    def __init__(self, defects: tuple[str, ...] | list[str] = (), settle_seconds: float | None = None) -> None:
        self._helper = HelperProcess("conformance.reference.child", "the embedded reference server")
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._helper.send({"defects": list(defects), "settle_seconds": settle_seconds})

    @property
    def process(self) -> Any:
        return self._helper.process

    def _receive(self) -> dict[str, Any]:
        answer = self._helper.receive()
        if answer is None:
            raise self._helper.stopped()
        return dict(answer)

    def ready(self) -> EmbeddedServer:
        """Wait until it listens; a refused configuration is the user's (`--defect`)."""
        if self._state is None:
            answer = self._receive()
            if "error" in answer:
                self.stop()
                raise OptionsError(f"--defect: {answer['error']}")
            self._state = answer["state"]
        return self

    @property
    def state(self) -> dict[str, Any]:
        """The state document at start: base URL, credentials and task ids by status."""
        return self.ready()._state or {}

    @property
    def base_url(self) -> str:
        return str(self.state["base_url"])

    def create_tasks(self, status: str, count: int = 1) -> list[str]:
        # Scenarios run in several threads: one question and its answer at a time.
        with self._lock:
            self._helper.send({"create_tasks": [status, count]})
            return [str(task_id) for task_id in self._receive()["ids"]]

    def stop(self) -> None:
        """End it at once. A graceful shutdown would cost the run's last quarter second (uvicorn
        looks for its exit flag every 0.1 s, then the interpreter winds down)."""
        self._helper.stop()

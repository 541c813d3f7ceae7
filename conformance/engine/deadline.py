"""A whole-request deadline for requests: connect, send, headers and body within `--timeout` seconds.

requests' timeout bounds the connect and each socket read, not the request: a target that sends
one byte every 0.2 s never trips a 10 s read timeout and holds a request for as long as it likes,
in the headers (where the caller cannot even look at the clock: `Session.send` has not returned)
as well as in the body. So one watchdog thread per Target keeps every request's deadline, and
when a deadline passes while its request is still under way it shuts that request's socket down.
The read blocked on it wakes at once (end of stream, or an error), and the caller, seeing that the
watch fired, reports the request as unanswered in time, whatever urllib3 made of the cut.

The watchdog learns which connection a request uses through the connection pools of the
thread's `requests.Session` (`watch_connections`): urllib3 hands a request its connection in
`_get_conn`, and the pool notes it on the request's `Watch` (one request per thread at a time).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# The watchdog thread ends after this long with nothing to watch, and starts again on demand: an
# idle Target (tests make hundreds) leaves no thread behind for long.
IDLE_SECONDS = 1.0

_current = threading.local()


class Watch:
    """One request's deadline and, once the pool hands it one, its connection."""

    __slots__ = ("answered", "conn", "deadline", "done", "fired", "fired_in_body")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: Any = None
        self.done = False
        self.fired = False
        # Set by the caller once the status line and headers are in; noted when the watch fires,
        # because a cut in the middle of the headers can still hand the caller a response.
        self.answered = False
        self.fired_in_body = False

    def _fire(self) -> None:
        self.fired = True
        self.fired_in_body = self.answered
        _cut(self.conn)


class Watchdog:
    """Cuts requests at their deadline (time.monotonic seconds)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._running = False

    @contextmanager
    def watching(self, seconds: float) -> Iterator[Watch]:
        """The block's request is cut `seconds` from now; `watch.fired` says whether it was."""
        watch = Watch(time.monotonic() + seconds)
        with self._cond:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._running:
                self._cond.notify()
            else:
                self._running = True
                threading.Thread(target=self._run, name="sddc-deadlines", daemon=True).start()
        previous = getattr(_current, "watch", None)
        _current.watch = watch
        try:
            yield watch
        finally:
            _current.watch = previous
            with self._cond:
                # From here on the connection may go back to the pool and serve another request:
                # it must not be cut any more.
                watch.done = True
                if self._heap and self._heap[0][2] is watch:
                    # The thread sleeps until this deadline: wake it to drop the watch (and go idle
                    # when nothing is left) instead of sleeping out a deadline that no longer counts.
                    self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            idle_since: float | None = None
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if not self._heap:
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= IDLE_SECONDS:
                        self._running = False
                        return
                    self._cond.wait(IDLE_SECONDS)
                    continue
                idle_since = None
                deadline, _, watch = self._heap[0]
                if deadline > now:
                    self._cond.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                watch._fire()

    def cut_all(self) -> None:
        """Cut every request under way now (the run has stopped: none of their answers counts)."""
        with self._cond:
            for _, _, watch in self._heap:
                if not watch.done:
                    watch._fire()
            self._heap.clear()
            self._cond.notify()


def _cut(conn: Any) -> None:
    """Shut the connection's socket down, which wakes a read or write blocked on it."""
    sock = getattr(conn, "sock", None)
    if not isinstance(sock, socket.socket):
        return  # not connected yet: the connect timeout (never beyond the deadline) bounds it
    # socket.socket's own shutdown, also for TLS: SSLSocket.shutdown drops its SSL object, which
    # the thread reading through it may still be using. OSError: closed already.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        watch: Watch | None = getattr(_current, "watch", None)
        if watch is not None:
            watch.conn = conn
        return conn


class _WatchedHTTPSPool(_WatchedHTTPPool, HTTPSConnectionPool):
    # _WatchedHTTPPool's _get_conn, HTTPSConnectionPool's scheme and connections (the MRO puts
    # HTTPSConnectionPool before HTTPConnectionPool, whose attributes the first base only inherits).
    pass


def watch_connections(session: requests.Session) -> None:
    """Let the watchdog see which connection each of this session's requests uses."""
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

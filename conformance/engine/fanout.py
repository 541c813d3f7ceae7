"""Independent requests sent side by side: a bounded pool of workers over one Target.

The Target is already safe to share: one keep-alive `requests.Session` per worker thread, the
request budget and the rate limit reserved under one lock (so `--max-requests` stays exact and
`--rate-limit` is global across workers), failures counted per method for the circuit breaker.
Only requests whose order does not matter go through here; each scenario keeps its own order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def fan_out(items: Iterable[T], work: Callable[[T], R], concurrency: int) -> list[R]:
    """`work(item)` for every item, at most `concurrency` at a time; results in item order.

    The first exception (a spent budget, a target that stopped answering, an interrupt) stops
    what has not started yet and is raised once the running ones have finished, so nothing is
    left sending behind the caller's back.
    """
    todo = list(items)
    if concurrency <= 1 or len(todo) <= 1:
        return [work(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(todo)), thread_name_prefix="sddc-probe") as pool:
        futures: list[Future[R]] = [pool.submit(work, item) for item in todo]
        try:
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            # Ctrl-C (or SIGTERM) while waiting: drop the queue so leaving the pool waits only for
            # the requests already on the wire, not for every queued one.
            for future in futures:
                future.cancel()
            raise
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in pending:
                future.cancel()
            wait(pending)
            exc = failed.exception()
            assert exc is not None
            raise exc
    return [f.result() for f in futures]


class Pool:
    """Work submitted over time to at most `concurrency` workers, for producers that are still
    deciding what to send (Hypothesis drawing ids) while earlier work is on the wire.

    `finish()` waits for everything and raises the first exception; leaving the block on an
    exception (an interrupt, a spent budget) drops what has not started, so only the requests
    already on the wire are waited for.
    """

    def __init__(self, concurrency: int, name: str = "sddc-probe") -> None:
        self._executor = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix=name)
        self._futures: list[Future[object]] = []

    def submit(self, work: Callable[[T], object], item: T) -> None:
        self._futures.append(self._executor.submit(work, item))

    def finish(self) -> None:
        done, _ = wait(self._futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in self._futures if f in done and f.exception() is not None), None)
        if failed is not None:
            exc = failed.exception()
            assert exc is not None
            raise exc

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is not None:
            for future in self._futures:
                future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=kind is not None)

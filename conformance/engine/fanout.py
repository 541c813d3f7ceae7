"""Independent requests sent side by side: a bounded pool of workers over one Target.

The Target is already safe to share: one keep-alive `requests.Session` per worker thread, the
request budget and the rate limit reserved under one lock (so `--max-requests` stays exact and
`--rate-limit` is global across workers), failures counted per method for the circuit breaker.
Only requests whose order does not matter go through here; each scenario keeps its own order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

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
    with Pool(min(concurrency, len(todo))) as pool:
        futures = [pool.submit(work, item) for item in todo]
        pool.finish()
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
        self._futures: list[Future[Any]] = []

    def submit(self, work: Callable[[T], R], item: T) -> Future[R]:
        future = self._executor.submit(work, item)
        self._futures.append(future)
        return future

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
        # Ctrl-C (or SIGTERM) while waiting, or a failed request: drop the queue so leaving the
        # pool waits only for the requests already on the wire, not for every queued one.
        if kind is not None:
            for future in self._futures:
                future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=kind is not None)

"""``close_old_connections()`` for long-running loops, at most once a second per thread.

Django calls it around every request; a pipeline loop calls it itself, so a connection past its
age or broken is replaced. With health checks on, each call costs the next query a ``SELECT 1``
round trip: once per batch, that was a tenth of the consumer's CPU at everyday rates. Once a
second is as safe: a failure resets the throttle, so the retry starts on a checked connection.

``close_pool_connections`` closes the connections a worker's thread pool opened, when it stops.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures

from django.db import close_old_connections, connections

INTERVAL_S = 1.0


class ConnectionHygiene:
    def __init__(self, interval_s: float = INTERVAL_S):
        self.interval_s = interval_s
        self._local = threading.local()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - getattr(self._local, "checked_at", float("-inf")) >= self.interval_s:
            close_old_connections()
            self._local.checked_at = now

    def reset(self) -> None:
        """After a failure: the next call checks the connections whatever the interval."""
        self._local.checked_at = float("-inf")


def close_pool_connections(pool: ThreadPoolExecutor, threads: int) -> None:
    """Close the database connections of each of a pool's ``threads`` (Django's are per thread): one
    task per thread, each waiting at a barrier once it has closed, so no thread runs two of them."""
    barrier = threading.Barrier(threads)

    def close_mine():
        connections.close_all()
        try:
            barrier.wait(5)
        except threading.BrokenBarrierError:
            pass

    wait_for_futures([pool.submit(close_mine) for _ in range(threads)])

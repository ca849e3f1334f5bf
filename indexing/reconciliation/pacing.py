"""The read pace of one reconciliation."""

from __future__ import annotations

import time


class Pacer:
    """Keep the long-run read rate at ``rate`` items/s by sleeping after each chunk.

    One reconciliation is one process reading sequentially, so a local pacer is
    enough (a backfill spread over workers needs the shared bucket of
    backfills/throttle.py). Changing the rate restarts the measurement, so a
    new limit applies from the next chunk on without a catch-up burst.
    """

    def __init__(self, rate: int | None, clock=time.monotonic, sleep=time.sleep):
        self.clock, self.sleep = clock, sleep
        self.rate = None
        self.set_rate(rate)

    def set_rate(self, rate: int | None) -> None:
        if rate != self.rate:
            self.rate = rate
            self._since = self.clock()
            self._done = 0

    def pace(self, items: int) -> float:
        if not self.rate:
            return 0.0
        self._done += items
        wait = self._since + self._done / self.rate - self.clock()
        if wait > 0:
            self.sleep(wait)
        return max(0.0, wait)

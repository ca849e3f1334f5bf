"""Backpressure: slow down before the search cluster falls over.

The controller watches the cluster's write thread pool (queue vs capacity)
and the 429s the sink meets. Under pressure it halves the batch size and asks
the consumer to pause its partitions for a backoff that grows with jitter;
when the pressure clears it grows the batch back step by step (AIMD), so the
consumer recovers by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from indexing.core.backoff import backoff_delay
from indexing.engines import EngineUnavailable, SearchEngine


@dataclass
class PressureReading:
    under_pressure: bool
    queue_ratio: float
    reason: str = ""
    reachable: bool = True


def read_write_queue(engine: SearchEngine, threshold: float) -> PressureReading:
    """The one reading of the node's write queue, for the consumer and for backfills.

    An unreachable node is not queue pressure (``under_pressure`` False) but says so
    (``reachable`` False): the writer meets the outage on its next bulk and waits it out there,
    while a caller that paces itself (a backfill) may slow down for it as well."""
    try:
        pool = engine.write_thread_pool()
    except EngineUnavailable as exc:
        return PressureReading(False, 0.0, f"unavailable: {exc}", reachable=False)
    ratio = pool.queue_ratio
    return PressureReading(ratio >= threshold, ratio, f"write queue {pool.queue}/{pool.queue_capacity}")


class BackpressureController:
    OK = "ok"
    THROTTLED = "throttled"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"

    def __init__(self, engine: SearchEngine, *, max_batch: int, min_batch: int, queue_ratio: float,
                 check_interval_s: float, base_pause_s: float = 0.2, max_pause_s: float = 10.0):
        self.engine = engine
        self.max_batch = max_batch
        self.min_batch = min_batch
        self.threshold = queue_ratio
        self.check_interval_s = check_interval_s
        self.base_pause_s = base_pause_s
        self.max_pause_s = max_pause_s
        self.batch_size = max_batch
        self.state = self.OK
        self.last_reading = PressureReading(False, 0.0)
        self._last_check = 0.0
        self._pressure_rounds = 0
        self._recent_429 = 0

    # -- signals -------------------------------------------------------------
    def on_throttled(self, rejected: int) -> None:
        """The sink met 429s: shrink at once, don't wait for the next thread-pool reading."""
        self._recent_429 += rejected
        self._shrink()
        self.state = self.THROTTLED

    def on_unavailable(self, _error: str) -> None:
        self.state = self.UNAVAILABLE

    def on_batch_done(self, report) -> None:
        if report.rejected_429 == 0 and self._recent_429 == 0 and self.state in (self.OK, self.THROTTLED, self.UNAVAILABLE):
            self._grow()
            if self.batch_size >= self.max_batch:
                self.state = self.OK
        self._recent_429 = 0

    # -- readings ------------------------------------------------------------
    def read(self, force: bool = False) -> PressureReading:
        now = time.monotonic()
        if not force and now - self._last_check < self.check_interval_s:
            return self.last_reading
        self._last_check = now
        # Unreachable is not a reason to pause: the sink will find out and wait; pausing would hide it.
        self.last_reading = read_write_queue(self.engine, self.threshold)
        return self.last_reading

    def reading_due(self) -> bool:
        """Whether ``pause_for`` would read the node now rather than answer from its last reading."""
        return time.monotonic() - self._last_check >= self.check_interval_s

    def pause_for(self) -> float | None:
        """Seconds to pause before the next batch, or None to go on."""
        reading = self.read()
        if not reading.under_pressure:
            if self.state == self.PAUSED:
                self.state = self.THROTTLED
            self._pressure_rounds = 0
            return None
        self.state = self.PAUSED
        self._shrink()
        delay = max(self.base_pause_s, backoff_delay(self._pressure_rounds, self.base_pause_s, self.max_pause_s))
        self._pressure_rounds += 1
        self._last_check = 0.0  # read again right after the pause
        return delay

    # -- batch size (AIMD) ---------------------------------------------------
    def _shrink(self) -> None:
        self.batch_size = max(self.min_batch, self.batch_size // 2)

    def _grow(self) -> None:
        step = max(1, self.max_batch // 10)
        self.batch_size = min(self.max_batch, self.batch_size + step)

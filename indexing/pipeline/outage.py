"""A consumer's side of a search-node outage: mark its blueprint paused, say so in the log, clear it.

While the node does not answer the consumer waits, as it must (events pile up in Kafka, invariant 1),
so an outage makes no error of its own: without this, the log was silent for as long as it lasted.
The bulk thread reports what it sees (``unavailable`` for a request nobody answered, ``answered``
when one is answered again) and marks the blueprint paused in Redis (``core.pauses``) for the
console. The consumer's own thread, the only one that may use the Kafka client, calls ``report``
about once a second: a WARNING when the pause starts and one a minute while it lasts, each with
the events waiting (the lag of this consumer's partitions), and an INFO when it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from indexing.core import pauses

log = logging.getLogger("indexing.pipeline.consumer")

REPEAT_S = 60.0
REFRESH_S = 10.0  # how often the consumer's thread renews the mark while the bulk thread sleeps


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _clock_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S UTC")


class Outage:
    def __init__(self, blueprint: str, waiting: Callable[[], int | None], *, clock=time.time,
                 repeat_s: float | None = None, store=pauses):
        self.blueprint = blueprint
        self.waiting = waiting
        self.clock = clock
        self.repeat_s = repeat_s if repeat_s is not None else REPEAT_S
        self.store = store
        self._lock = threading.Lock()
        self.since: float | None = None
        self.reason = ""
        self._ended: tuple[float, float] | None = None  # (since, until) of a pause not yet logged as ended
        self._warned_at: float | None = None
        self._marked_at = 0.0

    # -- the bulk thread -----------------------------------------------------
    def unavailable(self, reason: str) -> None:
        now = self.clock()
        with self._lock:
            if self.since is None:
                self.since = now
            self.reason = reason
        self._mark(now)

    def answered(self) -> None:
        now = self.clock()
        with self._lock:
            if self.since is None:
                return
            self._ended, self.since = (self.since, now), None
        try:
            self.store.clear(self.blueprint)
        except Exception as exc:  # the mark expires by itself
            log.debug("could not clear the pause of %s: %s", self.blueprint, exc)

    def _mark(self, now: float) -> None:
        try:
            self.store.mark(self.blueprint, self.reason, now)
            self._marked_at = now
        except Exception as exc:  # the console's view must never stop indexing
            log.debug("could not mark %s paused: %s", self.blueprint, exc)

    # -- the consumer's thread -------------------------------------------------
    def report(self) -> None:
        with self._lock:
            since, reason, ended, self._ended = self.since, self.reason, self._ended, None
        now = self.clock()
        if ended is not None:
            log.info("%s: the search node answers again; indexing resumed after %.0f s paused (since %s)",
                     self.blueprint, ended[1] - ended[0], _clock_time(ended[0]))
            self._warned_at = None
        if since is None:
            return
        if now - self._marked_at >= REFRESH_S:
            self._mark(now)
        if self._warned_at is not None and now - self._warned_at < self.repeat_s:
            return
        first = self._warned_at is None
        self._warned_at = now
        try:
            waiting = self.waiting()
        except Exception as exc:  # Kafka may be slow too; the warning matters more than the count
            log.debug("could not read the lag of %s: %s", self.blueprint, exc)
            waiting = None
        log.warning("%s: indexing %s paused for the search node since %s (%.0f s): %s; %s events waiting in Kafka",
                    self.blueprint, "is" if first else "is still", _clock_time(since), now - since, _short(reason),
                    "?" if waiting is None else waiting)

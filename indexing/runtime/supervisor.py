"""Keep the pipeline's threads running, or give up loudly.

A relay or consumer thread that dies (an exception outside a batch's own error
handling, or a return while nobody asked it to stop) is restarted after an
exponential backoff with jitter, with a fresh instance from its factory (a
closed Kafka client cannot be reused). Every failure is counted in Redis
(``liveness.record_failure``). When a thread fails ``max_failures`` times within
``window_s`` it is considered unrecoverable in this process: the supervisor
calls ``on_fatal`` so the process exits non-zero and its own supervisor
(systemd, Kubernetes, Celery's parent) restarts it — a worker never limps on
without a consumer.

A thread spawned ``retirable`` has a stop event of its own: ``retire`` ends it
on purpose (a consumer whose blueprint was disabled), through the same graceful
stop as the whole process's, and a retired thread is neither restarted nor
counted as a failure. ``stop`` ends every thread, retirable or not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from indexing.core.backoff import backoff_delay

log = logging.getLogger(__name__)

# A factory returns the thread's body: a callable that runs until the stop event is set.
Factory = Callable[[], Callable[[threading.Event], None]]


@dataclass
class SupervisorPolicy:
    max_failures: int = 5
    window_s: float = 300.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    @classmethod
    def from_settings(cls) -> "SupervisorPolicy":
        from indexing.conf import searchsync_settings as cfg

        return cls(cfg.SUPERVISOR_MAX_FAILURES, cfg.SUPERVISOR_WINDOW_S,
                   cfg.SUPERVISOR_BACKOFF_BASE_S, cfg.SUPERVISOR_BACKOFF_MAX_S)

    def restart_delay(self, attempt: int) -> float:
        # The base is a floor: a crash loop never spins faster than once per base interval.
        return self.backoff_base_s + backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s)


@dataclass
class FailureWindow:
    """Failures of one thread within a sliding window; full means give up."""

    limit: int
    window_s: float
    times: deque = field(default_factory=deque)

    def add(self, now: float) -> bool:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()
        return len(self.times) >= self.limit

    @property
    def recent(self) -> int:
        return len(self.times)


class Supervisor:
    def __init__(self, stop: threading.Event, policy: SupervisorPolicy | None = None,
                 on_fatal: Callable[[str, str], None] | None = None, record: Callable[[str, str, bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stop_event = stop
        self.policy = policy or SupervisorPolicy.from_settings()
        self.on_fatal = on_fatal or (lambda thread, error: None)
        self.record = record if record is not None else _record_failure
        self.clock = clock
        self.threads: list[threading.Thread] = []
        self.fatal = threading.Event()
        self.fatal_reason = ""
        self._own_stops: dict[threading.Thread, threading.Event] = {}
        self._lock = threading.Lock()

    def spawn(self, name: str, factory: Factory, retirable: bool = False) -> threading.Thread:
        """Run the factory's body in a supervised thread; ``retirable``: it can be ended alone by ``retire``."""
        own_stop = threading.Event() if retirable else self.stop_event
        thread = threading.Thread(target=self._keep_running, args=(name, factory, own_stop), name=name, daemon=True)
        with self._lock:
            # Retired threads that have finished are forgotten, so enabling and disabling blueprints
            # for months does not grow the list.
            self.threads = [t for t in self.threads if t.is_alive() or t not in self._own_stops]
            self._own_stops = {t: e for t, e in self._own_stops.items() if t.is_alive()}
            if retirable:
                self._own_stops[thread] = own_stop
                if self.stop_event.is_set():
                    own_stop.set()
            thread.start()
            self.threads.append(thread)
        return thread

    def retire(self, thread: threading.Thread) -> None:
        """Ask one retirable thread to stop for good; it ends as on a process stop and is not restarted."""
        with self._lock:
            own_stop = self._own_stops.get(thread)
        if own_stop is None:
            raise ValueError(f"{thread.name} was not spawned retirable")
        own_stop.set()

    def stop(self) -> None:
        """Stop every thread: the shared stop event, and the own event of each retirable thread."""
        with self._lock:
            self.stop_event.set()
            own_stops = list(self._own_stops.values())
        for own_stop in own_stops:
            own_stop.set()

    def _keep_running(self, name: str, factory: Factory, own_stop: threading.Event) -> None:
        from django.db import connections

        def stopping() -> bool:
            return self.stop_event.is_set() or own_stop.is_set()

        window = FailureWindow(self.policy.max_failures, self.policy.window_s)
        attempt = 0
        while not stopping():
            started = self.clock()
            try:
                factory()(own_stop)
                if stopping():
                    return
                error = "exited without being asked to stop"
            except Exception as exc:
                if stopping():
                    # Asked to stop: whatever went wrong on the way out is not a failure to restart.
                    log.warning("%s raised while stopping: %s: %s", name, type(exc).__name__, exc)
                    return
                error = f"{type(exc).__name__}: {exc}"
                log.exception("%s crashed", name)
            finally:
                connections.close_all()
            now = self.clock()
            # A thread that ran healthily for a whole window starts its backoff from scratch.
            attempt = 0 if now - started > self.policy.window_s else attempt + 1
            give_up = window.add(now)
            self._record(name, error, restarting=not give_up)
            if give_up:
                self.fatal_reason = f"{name} failed {window.recent} times within {self.policy.window_s:.0f}s: {error}"
                log.critical("%s; giving up so the process is restarted", self.fatal_reason)
                self.fatal.set()
                self.on_fatal(name, self.fatal_reason)
                return
            delay = self.policy.restart_delay(attempt - 1)
            log.warning("%s failed (%s); restart %d in %.1fs", name, error, window.recent, delay)
            if own_stop.wait(delay) or stopping():
                return

    def _record(self, name: str, error: str, restarting: bool) -> None:
        try:
            self.record(name, error, restarting)
        except Exception as exc:  # counting must never stop the restart
            log.warning("could not record the failure of %s: %s", name, exc)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)


def _record_failure(name: str, error: str, restarting: bool) -> None:
    from indexing.core.liveness import record_failure

    record_failure(name, error, restarting)

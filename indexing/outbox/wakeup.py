"""Waking the outbox relay, outside the application's commit path.

``pg_notify`` inside a transaction makes PostgreSQL serialise the commits of all
notifying transactions on one database-wide lock, held until each commit is
flushed: at a few thousand commits/s that lock, not the work, is the ceiling.
So a transaction that wrote outbox rows instead asks, once and only after it
committed, for a wake-up through Redis: ``LPUSH`` of a token to a list capped at
one element (every wake-up since the relay last looked coalesces into one). The
push itself runs on a per-process daemon thread, so the request thread does not
even wait for that round trip; pushes requested meanwhile coalesce too.
The relay blocks on that list with ``BLPOP`` for at most its poll interval, so
a lost wake-up (Redis down, a writer killed between commit and push) costs at
most one poll interval, never a row: the relay always polls as well.

A token pushed after the relay's last query is still in the list when the relay
waits again, so a commit that raced with a relay round is never left waiting.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.db import transaction
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)


def wakeup_key(using: str = "default") -> str:
    # One list per database: relays and writers of one outbox meet there, other databases never do.
    db = settings.DATABASES[using]
    return f"searchsync:relay-wakeup:{db.get('HOST') or 'local'}:{db.get('PORT') or ''}:{db['NAME']}"


def request_wakeup(using: str = "default") -> None:
    """Wake the relay after the current transaction commits; once per transaction however many rows."""
    if searchsync_settings.PUBLISHER != "relay":
        return  # Debezium reads the WAL; nobody waits for this
    conn = transaction.get_connection(using)
    if any(func is _wake_pending[using] for _, func, _ in conn.run_on_commit):
        return
    transaction.on_commit(_wake_pending[using], using=using, robust=True)


def push_wakeup(using: str = "default") -> None:
    """Ask for a wake-up now (what a committed transaction's callback does); returns at once."""
    _pusher.request(wakeup_key(using))


class _Pusher:
    """One daemon thread per process sends the wake-ups, so a request thread never waits on Redis.

    Requests that arrive while a push is under way, or within ``RELAY_WAKEUP_INTERVAL_MS`` after
    it, coalesce into the next one: a bounded number of Redis round trips per process, however
    many transactions commit meanwhile.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._keys: set[str] = set()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def request(self, key: str) -> None:
        with self._lock:
            self._keys.add(key)
            # A forked child inherits no running thread: start one in this process.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._wanted = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._wanted,), name="relay-wakeup",
                                                daemon=True)
                self._thread.start()
        self._wanted.set()

    def _run(self, wanted: threading.Event) -> None:
        while True:
            wanted.wait()
            wanted.clear()
            with self._lock:
                keys, self._keys = self._keys, set()
            for key in keys:
                _push_now(key)
            # Under a steady stream of commits, at most one push per interval per process: the first
            # commit after a quiet spell is pushed at once, a busy process adds at most this delay.
            time.sleep(searchsync_settings.RELAY_WAKEUP_INTERVAL_MS / 1000)


def _push_now(key: str) -> None:
    from indexing.core.redis_store import get_redis

    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.lpush(key, 1)
        pipe.ltrim(key, 0, 0)
        pipe.execute()
    except Exception as exc:  # the relay's poll picks the rows up; a write never fails for this
        log.debug("relay wake-up not sent (%s); the relay's poll will find the rows", exc)


_pusher = _Pusher()


class _PerAlias(dict):
    """One callback object per database alias, so a transaction can tell whether it already asked."""

    def __missing__(self, using: str):
        def wake():
            push_wakeup(using)

        self[using] = wake
        return wake


_wake_pending = _PerAlias()


def _warn_unavailable(exc: Exception) -> None:
    # A relay probing at a short interval asks many times a second: warn once a minute.
    global _warned_at
    if time.monotonic() - _warned_at > 60:
        _warned_at = time.monotonic()
        log.warning("relay: wake-ups unavailable (%s); polling", exc)


def wait_for_wakeup(timeout_s: float, using: str = "default") -> bool:
    """Block until a writer asks for a wake-up or ``timeout_s`` passes; True if woken."""
    from indexing.core.redis_store import get_redis

    try:
        return get_redis().blpop([wakeup_key(using)], timeout=max(0.01, timeout_s)) is not None
    except Exception as exc:
        _warn_unavailable(exc)
        time.sleep(timeout_s)
        return False


_warned_at = -1e9

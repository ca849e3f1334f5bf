"""Waking the outbox relay, outside the application's commit path.

``pg_notify`` inside a transaction makes PostgreSQL serialise the commits of all
notifying transactions on one database-wide lock, held until each commit is
flushed: at a few thousand commits/s that lock, not the work, is the ceiling.
So a transaction that wrote outbox rows instead asks, once and only after it
committed, for a wake-up through Redis: ``LPUSH`` of a token to a list capped at
one element (every wake-up since the relay last looked coalesces into one).
The relay blocks on that list with ``BLPOP`` for at most its poll interval, so
a lost wake-up (Redis down, a writer killed between commit and push) costs at
most one poll interval, never a row: the relay always polls as well.

A token pushed after the relay's last query is still in the list when the relay
waits again, so a commit that raced with a relay round is never left waiting.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def wakeup_key(using: str = "default") -> str:
    # One list per database: relays and writers of one outbox meet there, other databases never do.
    db = settings.DATABASES[using]
    return f"searchsync:relay-wakeup:{db.get('HOST') or 'local'}:{db.get('PORT') or ''}:{db['NAME']}"


def request_wakeup(using: str = "default") -> None:
    """Wake the relay after the current transaction commits; once per transaction however many rows."""
    if settings.SEARCHSYNC_DEBEZIUM["PUBLISHER"] != "relay":
        return  # Debezium reads the WAL; nobody waits for this
    conn = transaction.get_connection(using)
    if any(func is _wake_pending[using] for _, func, _ in conn.run_on_commit):
        return
    transaction.on_commit(_wake_pending[using], using=using, robust=True)


def push_wakeup(using: str = "default") -> None:
    from .redis_store import get_redis

    try:
        pipe = get_redis().pipeline(transaction=False)
        key = wakeup_key(using)
        pipe.lpush(key, 1)
        pipe.ltrim(key, 0, 0)
        pipe.execute()
    except Exception as exc:  # the relay's poll picks the rows up; a write never fails for this
        log.debug("relay wake-up not sent (%s); the relay's poll will find the rows", exc)


class _PerAlias(dict):
    """One callback object per database alias, so a transaction can tell whether it already asked."""

    def __missing__(self, using: str):
        def wake():
            push_wakeup(using)

        self[using] = wake
        return wake


_wake_pending = _PerAlias()


def wait_for_wakeup(timeout_s: float, using: str = "default") -> bool:
    """Block until a writer asks for a wake-up or ``timeout_s`` passes; True if woken."""
    from .redis_store import get_redis

    try:
        return get_redis().blpop([wakeup_key(using)], timeout=max(0.01, timeout_s)) is not None
    except Exception as exc:
        log.warning("relay: wake-ups unavailable (%s); polling every %.1fs", exc, timeout_s)
        import time

        time.sleep(timeout_s)
        return False

"""Events anyone can repeat at will, recorded without letting them grow the trail at will.

A failed login, a lockout or a refused change can be sent again and again by whoever sent the first,
and audit rows can never be deleted. Such an event is recorded through a ``Repeatable``: per action,
key (for example the username and the address) and fixed window of ``REPEAT_WINDOW_S`` seconds,

- the first event of a key writes its row, as ``record`` would, with the end of its window;
- later events of that key in the window only add to a counter in the shared cache;
- at most ``REPEAT_MAX_ROWS`` keys per action and window get a row; events of further keys are counted;
- once the window is over, one summary row ``<action>.repeats`` gives its events, the events per key
  (most frequent first) and how many were not written as rows. The beat task writes it every minute, or
  the action's first event of a later window does, whichever comes first; a cache ``add`` makes it once.

So an action adds at most ``REPEAT_MAX_ROWS`` + 1 rows per window, whoever sends what. Rows are never
updated (the table refuses it): the counts go into the summary instead. The counters live in the default
cache (Redis, shared by every web process) for three windows.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from django.conf import settings
from django.core.cache import cache

from .models import AuditEvent
from .trail import record

PREFIX = "audit-repeats"
# Keys listed in a summary; the totals count every key.
SUMMARY_KEYS = 50

_registry: dict[str, Repeatable] = {}


def _window_s() -> int:
    return max(1, int(settings.SEARCHSYNC_AUDIT["REPEAT_WINDOW_S"]))


def _max_rows() -> int:
    return max(0, int(settings.SEARCHSYNC_AUDIT["REPEAT_MAX_ROWS"]))


def _ttl() -> int:
    # The window itself, the next one (its summary may be written then) and one more for a late beat.
    return 3 * _window_s() + 60


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()


def _incr(key: str) -> int:
    cache.add(key, 0, _ttl())
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, _ttl())
        return 1


@dataclass(frozen=True)
class Repeatable:
    action: str
    outcome: str

    def _base(self, window: int) -> str:
        return f"{PREFIX}:{self.action}:{window}"

    def record(self, actor, target="", *, key: dict, details: dict | None = None, request=None,
               now: float | None = None) -> AuditEvent | None:
        """Record the event if it is its key's first in the window (and there is room); else count it.
        Returns the row written, or None."""
        now = time.time() if now is None else now
        window = int(now // _window_s())
        base = self._base(window)
        if _incr(f"{base}:events") == 1:
            # The action's first event of a window: the previous one is over.
            self.summarise(window - 1)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]
        if _incr(f"{base}:key:{digest}") > 1:
            return None
        slot = _incr(f"{base}:keys")
        if slot > _max_rows():
            return None
        cache.set(f"{base}:slot:{slot}", {"key": key, "digest": digest}, _ttl())
        window_end = _at((window + 1) * _window_s())
        return record(actor, self.action, target, details={**(details or {}), "window_end": window_end},
                      outcome=self.outcome, request=request)

    def summarise(self, window: int) -> AuditEvent | None:
        """The summary row of a window that is over, if some of its events got no row of their own."""
        base = self._base(window)
        events = cache.get(f"{base}:events") or 0
        keys = cache.get(f"{base}:keys") or 0
        rows = min(keys, _max_rows())
        if events <= rows or not cache.add(f"{base}:summarised", 1, _ttl()):
            return None
        slots = cache.get_many([f"{base}:slot:{i}" for i in range(1, rows + 1)]).values()
        counts = cache.get_many([f"{base}:key:{s['digest']}" for s in slots])
        per_key = sorted(({**s["key"], "events": counts.get(f"{base}:key:{s['digest']}", 1)} for s in slots),
                         key=lambda k: -k["events"])
        details = {
            "window_start": _at(window * _window_s()), "window_end": _at((window + 1) * _window_s()),
            "events": events, "rows": rows, "not_written": events - rows,
            "keys": keys, "keys_without_row": max(0, keys - rows),
            "repeated": [k for k in per_key if k["events"] > 1][:SUMMARY_KEYS],
        }
        # Written by the system, not by whichever request happens to trigger it.
        return AuditEvent.objects.create(actor="", action=f"{self.action}.repeats", target=self.action,
                                         details=details, outcome=self.outcome)


def repeatable(action: str, outcome: str) -> Repeatable:
    """Declare an action anyone can repeat (at import time, so the beat process knows it too)."""
    _registry[action] = Repeatable(action, outcome)
    return _registry[action]


def summarise_closed_windows(now: float | None = None) -> list[AuditEvent]:
    """Summaries of the last two windows that are over, for every repeatable action (beat, every minute)."""
    now = time.time() if now is None else now
    current = int(now // _window_s())
    written = [r.summarise(w) for r in list(_registry.values()) for w in (current - 2, current - 1)]
    return [event for event in written if event is not None]

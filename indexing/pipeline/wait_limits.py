"""How many read-your-writes waits may run at once: per web process and per user.

A wait (``?wait=searchable``) holds its web thread for up to its timeout (30 s at most). Unbounded,
one client could fill every thread of every worker with waits, and every other request would queue
behind them. Two caps, checked before a wait starts:

- per process, ``WAITS_PER_PROCESS``: a non-blocking semaphore (a count under a lock, so that a
  changed setting applies at once). gunicorn runs ``WEB_THREADS`` threads per worker, more than
  this, so waits always leave threads for other requests (``gunicorn.conf.py``);
- per user, ``WAITS_PER_USER``, over all web processes: a sorted set in Redis of the user's waits by
  deadline, taken and released by scripts. A process killed mid-wait cannot release its entry; it
  stops counting at its deadline, and the key expires with the last one.

A wait over a cap is not an error: the write is done and its answer says the wait did not happen
and why (``not_waited``).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from indexing.conf import searchsync_settings
from indexing.core.redis_store import get_redis

USER_KEY = "searchsync:ryw:user-waits:{user}"
# An entry outlives its wait by this much: a wait ends by its timeout, plus the answer's own work.
MARGIN_S = 5.0

TOO_MANY = "too many concurrent waits"
UNAVAILABLE = "wait bookkeeping unavailable"

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class Refusal:
    reason: str
    limit: str  # "process" or "user": which cap refused; "" when the bookkeeping failed


class ProcessSlots:
    """At most ``limit()`` holders at once in this process; ``take`` never blocks."""

    def __init__(self, limit=lambda: searchsync_settings.WAITS_PER_PROCESS):
        self._limit = limit
        self._lock = threading.Lock()
        self.taken = 0

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self._limit():
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


PROCESS = ProcessSlots()
_take_script = None


def _take_for_user(user: str, token: str, timeout_s: float) -> bool:
    global _take_script
    if _take_script is None:
        _take_script = get_redis().register_script(_TAKE)
    now = time.time()
    return bool(_take_script(keys=[USER_KEY.format(user=user)],
                             args=[now, now + timeout_s + MARGIN_S, token, searchsync_settings.WAITS_PER_USER,
                                   math.ceil(timeout_s + MARGIN_S) + 1]))


def user_waits(user: str) -> int:
    """Waits of ``user`` running now, in every process."""
    return get_redis().zcount(USER_KEY.format(user=user), time.time(), "+inf")


@contextmanager
def slot(user: str, timeout_s: float):
    """Around one wait: yields None when it may go on, else the ``Refusal`` that says why not."""
    if not PROCESS.take():
        yield Refusal(TOO_MANY, "process")
        return
    token = uuid.uuid4().hex
    try:
        try:
            took = _take_for_user(user, token, timeout_s)
        except redis.RedisError:
            yield Refusal(UNAVAILABLE, "")
            return
        if not took:
            yield Refusal(TOO_MANY, "user")
            return
        try:
            yield None
        finally:
            try:
                get_redis().zrem(USER_KEY.format(user=user), token)
            except redis.RedisError:
                pass  # the entry stops counting at its deadline
    finally:
        PROCESS.give_back()

"""Indexing paused because the search node does not answer: per blueprint, in Redis, since when.

A consumer whose bulk gets no answer at all waits (events pile up in Kafka, invariant 1); it marks
its blueprint paused here, keeping the first start time, and clears the mark when a bulk is
answered again. The console's overview (another process) reads it. The mark expires unless a
waiting consumer refreshes it, so a consumer killed during an outage cannot leave it behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from indexing.core.redis_store import get_redis

PAUSE_KEY = "searchsync:indexing-paused:{name}"
# Refreshed by every wait of a paused consumer (at most RETRY_MAX_MS apart) and its heartbeat.
TTL_S = 90

# Start time is kept from the first mark: HSETNX.
_MARK = """
local started = redis.call('HSETNX', KEYS[1], 'since', ARGV[1])
redis.call('HSET', KEYS[1], 'reason', ARGV[2], 'updated', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return started
"""
_script = None


@dataclass(frozen=True)
class Pause:
    since: float
    reason: str
    updated: float

    def seconds(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.since)


def mark(name: str, reason: str, now: float | None = None) -> bool:
    """The blueprint's indexing waits for the search node; True when this starts the pause."""
    global _script
    if _script is None:
        _script = get_redis().register_script(_MARK)
    return bool(_script(keys=[PAUSE_KEY.format(name=name)], args=[now or time.time(), reason[:300], TTL_S]))


def current(name: str) -> Pause | None:
    raw = {k.decode(): v.decode() for k, v in get_redis().hgetall(PAUSE_KEY.format(name=name)).items()}
    if "since" not in raw:
        return None
    return Pause(float(raw["since"]), raw.get("reason", ""), float(raw.get("updated", raw["since"])))


def clear(name: str) -> Pause | None:
    """The search node answers again: the pause is over. Returns it, or None if there was none."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.hgetall(PAUSE_KEY.format(name=name))
    pipe.delete(PAUSE_KEY.format(name=name))
    raw, _ = pipe.execute()
    raw = {k.decode(): v.decode() for k, v in raw.items()}
    if "since" not in raw:
        return None
    return Pause(float(raw["since"]), raw.get("reason", ""), float(raw.get("updated", raw["since"])))

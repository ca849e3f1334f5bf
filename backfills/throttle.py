"""The backfill throttle: a rows/s token bucket shared by every worker of a backfill.

The bucket lives in Redis and is updated by one Lua script, so any number of
Celery workers draw from the same budget. Workers reserve tokens before they
read a page and sleep off any debt, which keeps the long-run rate at the limit
whatever the page size. The limit is re-read from the database on every page,
so a change made while the backfill runs takes effect within one page.

On top of the operator's limit an adaptive factor (0.05–1) shrinks the rate
when the search cluster pushes back (write queue past 80 %, 429s) or the source
database slows down, and climbs back step by step when they clear.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from indexing.core.redis_store import get_redis

BUCKET_KEY = "searchsync:backfill:{id}:bucket"
FACTOR_KEY = "searchsync:backfill:{id}:factor"
MIN_FACTOR = 0.05

# Refill, then reserve `requested` tokens (the balance may go negative: that
# is the debt the caller sleeps off). Redis' own clock: workers' clocks may differ.
_RESERVE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
tokens = tokens - requested
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], 86400)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


@dataclass
class Pressure:
    cluster: bool = False
    database: bool = False

    @property
    def any(self) -> bool:
        return self.cluster or self.database


def next_factor(current: float, pressure: Pressure) -> float:
    """Halve under pressure, recover by 10 % of the full rate per healthy page; kept within [MIN_FACTOR, 1]."""
    return max(MIN_FACTOR, min(1.0, current / 2 if pressure.any else current + 0.1))


def effective_rate(rows_per_second: int | None, factor: float) -> float | None:
    """Rows/s after the adaptive factor; None = unthrottled. Never below one row per second."""
    if not rows_per_second:
        return None
    return max(1.0, rows_per_second * factor)


def burst_for(rate: float) -> float:
    # A burst of half a second keeps the short-window rate close to the limit too.
    return max(1.0, rate * 0.5)


class BackfillThrottle:
    def __init__(self, backfill_id, sleep=time.sleep):
        self.backfill_id = str(backfill_id)
        self.redis = get_redis()
        self.sleep = sleep
        self._reserve = self.redis.register_script(_RESERVE)
        self.last_rate: float | None = None  # the rate of the last acquire (None: unthrottled)

    # -- adaptive factor -------------------------------------------------------
    def factor(self) -> float:
        raw = self.redis.get(FACTOR_KEY.format(id=self.backfill_id))
        return float(raw) if raw is not None else 1.0

    def observe(self, pressure: Pressure) -> float:
        value = next_factor(self.factor(), pressure)
        self.redis.set(FACTOR_KEY.format(id=self.backfill_id), value, ex=86400)
        return value

    # -- rate ------------------------------------------------------------------
    def effective_rate(self, rows_per_second: int | None) -> float | None:
        if not rows_per_second:
            return None
        return effective_rate(rows_per_second, self.factor())

    def acquire(self, rows: int, rows_per_second: int | None) -> float:
        """Block until ``rows`` may be read; returns the seconds slept."""
        rate = self.last_rate = self.effective_rate(rows_per_second)
        if rate is None:
            return 0.0
        wait = float(self._reserve(keys=[BUCKET_KEY.format(id=self.backfill_id)], args=[rate, burst_for(rate), rows]))
        if wait > 0:
            self.sleep(wait)
        return wait

    def reset(self) -> None:
        self.redis.delete(BUCKET_KEY.format(id=self.backfill_id), FACTOR_KEY.format(id=self.backfill_id))

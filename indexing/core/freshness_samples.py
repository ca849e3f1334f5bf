"""Freshness samples: commit -> indexed lags in Redis, one list per blueprint, source and minute.

The pipeline records them and observability reads them, so they live below both. A batch's
samples are one list entry (comma-separated): recording runs between one bulk's answer and the
next bulk, and one entry per event made it a tenth of that time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from indexing.core.redis_store import get_redis

SAMPLES_KEY = "searchsync:freshness:{name}:{source}:{minute}"
SAMPLES_TTL_S = 3 * 3600


@dataclass(frozen=True)
class Quantiles:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def quantiles(values: list[float]) -> Quantiles | None:
    if not values:
        return None
    if len(values) == 1:
        v = values[0]
        return Quantiles(1, v, v, v, v)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return Quantiles(len(values), cuts[49], cuts[94], cuts[98], max(values))


def minute_of(ts: float) -> int:
    return int(ts // 60) * 60


def record(name: str, source: str, lags_ms: list[float], at: float | None = None, pipe=None) -> None:
    """Store a batch's samples; into ``pipe`` (a Redis pipeline the caller executes) if given."""
    if not lags_ms:
        return
    key = SAMPLES_KEY.format(name=name, source=source, minute=minute_of(at or time.time()))
    own = pipe is None
    pipe = get_redis().pipeline(transaction=False) if own else pipe
    pipe.rpush(key, ",".join([f"{max(0.0, lag):.1f}" for lag in lags_ms]))
    pipe.expire(key, SAMPLES_TTL_S)
    if own:
        pipe.execute()


def samples(name: str, source: str, minute: int) -> list[float]:
    return parse_entries(get_redis().lrange(SAMPLES_KEY.format(name=name, source=source, minute=minute), 0, -1))


def parse_entries(entries: list[bytes]) -> list[float]:
    """The samples of some list entries (each one batch's, comma-separated)."""
    return [float(v) for entry in entries for v in entry.split(b",")]


def recent(name: str, source: str, seconds: int = 60) -> Quantiles | None:
    """Quantiles over the samples of the last ``seconds`` (whole minutes, current one included)."""
    now = time.time()
    values: list[float] = []
    minute = minute_of(now - seconds)
    while minute <= now:
        values.extend(samples(name, source, minute))
        minute += 60
    return quantiles(values)

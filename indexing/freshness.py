"""Freshness, measured: commit → indexed lag per event, commit → searchable per canary.

Samples go to Redis lists, one per blueprint, source and minute, so every
consumer process adds to the same window; a beat task rolls finished minutes
up into ``FreshnessMinute`` rows (p50/p95/p99/max) for the charts.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.utils import timezone

from .models import FreshnessMinute, IndexBlueprint
from .redis_store import get_redis

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


def _minute(ts: float) -> int:
    return int(ts // 60) * 60


def record(name: str, source: str, lags_ms: list[float], at: float | None = None) -> None:
    if not lags_ms:
        return
    key = SAMPLES_KEY.format(name=name, source=source, minute=_minute(at or time.time()))
    pipe = get_redis().pipeline(transaction=False)
    pipe.rpush(key, *[f"{max(0.0, lag):.1f}" for lag in lags_ms])
    pipe.expire(key, SAMPLES_TTL_S)
    pipe.execute()


def samples(name: str, source: str, minute: int) -> list[float]:
    raw = get_redis().lrange(SAMPLES_KEY.format(name=name, source=source, minute=minute), 0, -1)
    return [float(v) for v in raw]


def recent(name: str, source: str, seconds: int = 60) -> Quantiles | None:
    """Quantiles over the samples of the last ``seconds`` (whole minutes, current one included)."""
    now = time.time()
    values: list[float] = []
    minute = _minute(now - seconds)
    while minute <= now:
        values.extend(samples(name, source, minute))
        minute += 60
    return quantiles(values)


def roll_up(blueprint: IndexBlueprint, now: float | None = None, lookback_minutes: int = 10) -> int:
    """Store quantiles of every finished minute still in Redis; idempotent."""
    now = now or time.time()
    current = _minute(now)
    written = 0
    for source in FreshnessMinute.Source.values:
        for i in range(1, lookback_minutes + 1):
            minute = current - 60 * i
            q = quantiles(samples(blueprint.name, source, minute))
            if q is None:
                continue
            FreshnessMinute.objects.update_or_create(
                blueprint=blueprint,
                source=source,
                minute=datetime.fromtimestamp(minute, tz=dt_timezone.utc),
                defaults=dict(count=q.count, p50_ms=q.p50_ms, p95_ms=q.p95_ms, p99_ms=q.p99_ms, max_ms=q.max_ms),
            )
            written += 1
    return written


def history(blueprint: IndexBlueprint, source: str, minutes: int = 60) -> list[FreshnessMinute]:
    since = timezone.now() - timedelta(minutes=minutes)
    return list(FreshnessMinute.objects.filter(blueprint=blueprint, source=source, minute__gte=since).order_by("minute"))


# --- canaries -----------------------------------------------------------------


def send_canary(blueprint: IndexBlueprint) -> tuple[int, float]:
    """Write a canary change through the real path (outbox → relay → Kafka → consumer)."""
    from .blueprints import CANARY_ENTITY_ID, CANARY_TENANT_ID
    from .outbox import emit

    version = time.time_ns() // 1000  # microseconds: strictly increasing for the one canary document
    with transaction.atomic():
        emit(
            aggregate_type=blueprint.aggregate_type,
            aggregate_id=CANARY_ENTITY_ID,
            version=version,
            payload=blueprint.canary_payload,
            tenant_id=CANARY_TENANT_ID,
        )
    return version, time.time()


def await_canary(blueprint: IndexBlueprint, version: int, committed_at: float, timeout_s: float,
                 engine=None, poll_s: float = 0.05) -> float | None:
    """Poll the live index until the canary's version is searchable; record and return the lag in ms."""
    from .blueprints import CANARY_ENTITY_ID
    from .engines import EngineUnavailable, get_engine

    engine = engine or get_engine()
    live = blueprint.live_index()
    if live is None:
        return None
    query = {
        "size": 1,
        "_source": False,
        "query": {"bool": {"filter": [{"ids": {"values": [CANARY_ENTITY_ID]}}, {"range": {"version": {"gte": version}}}]}},
    }
    deadline = committed_at + timeout_s
    while time.time() < deadline:
        try:
            hits = engine.search(live.name, query)["hits"]["hits"]
        except EngineUnavailable:
            hits = []
        if hits:
            lag_ms = (time.time() - committed_at) * 1000
            record(blueprint.name, FreshnessMinute.Source.CANARY, [lag_ms])
            return lag_ms
        time.sleep(poll_s)
    # A canary that never shows up is the worst freshness there is: record the
    # timeout itself so the quantiles turn red instead of going quiet.
    record(blueprint.name, FreshnessMinute.Source.CANARY, [timeout_s * 1000])
    return None

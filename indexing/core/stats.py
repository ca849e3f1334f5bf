"""Pipeline counters and live consumer state, shared across processes in Redis.

Consumers run in Celery workers; the console and /metrics run in the web
process. Counters are Redis hashes so every process sees the same totals.
"""

from __future__ import annotations

import json
import time

from indexing.core.redis_store import get_redis

COUNTERS_KEY = "searchsync:counters:{name}"
STATE_KEY = "searchsync:consumer-state:{name}"
STATE_TTL_S = 30

OUTCOMES = ("indexed", "stale", "retried", "not_ready", "unavailable_waits", "dead_lettered", "superseded",
            "dropped_fields", "batches", "relayed")


def incr(name: str, pipe=None, **counts: int) -> None:
    """Add to a blueprint's counters; into ``pipe`` (a Redis pipeline the caller executes) if given."""
    add_counts(COUNTERS_KEY.format(name=name), pipe, **counts)


def add_counts(key: str, pipe=None, **counts: int) -> None:
    """Add to the counters of the hash ``key``; into ``pipe`` (a Redis pipeline the caller executes) if given."""
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return
    own = pipe is None
    pipe = get_redis().pipeline(transaction=False) if own else pipe
    for field_, value in counts.items():
        pipe.hincrby(key, field_, value)
    if own:
        pipe.execute()


def counters(name: str) -> dict[str, int]:
    raw = get_redis().hgetall(COUNTERS_KEY.format(name=name))
    return {k.decode(): int(v) for k, v in raw.items()}


def publish_state(name: str, consumer_id: str, **state) -> None:
    """Heartbeat of one consumer: what it is doing, seen on the console."""
    state["updated"] = time.time()
    key = STATE_KEY.format(name=name)
    pipe = get_redis().pipeline(transaction=False)
    pipe.hset(key, consumer_id, json.dumps(state))
    pipe.expire(key, STATE_TTL_S * 10)
    pipe.execute()


def clear_state(name: str, consumer_id: str) -> None:
    get_redis().hdel(STATE_KEY.format(name=name), consumer_id)


def consumer_states(name: str) -> dict[str, dict]:
    now = time.time()
    states = {}
    for consumer_id, raw in get_redis().hgetall(STATE_KEY.format(name=name)).items():
        state = json.loads(raw)
        if now - state.get("updated", 0) <= STATE_TTL_S:
            states[consumer_id.decode()] = state
    return states


BULK_KEY = "searchsync:bulk:{name}"
# Upper bounds (seconds) of the bulk latency histogram buckets.
BULK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def observe_bulk(name: str, seconds: float, documents: int, pipe=None) -> None:
    """One bulk round of a batch: its latency into histogram buckets, its size into a running sum."""
    key = BULK_KEY.format(name=name)
    own = pipe is None
    pipe = get_redis().pipeline(transaction=False) if own else pipe
    # Only the bucket it falls in ("in:"): ``bulk_histogram`` adds them up, so a batch costs four
    # commands, not one per bucket above its latency.
    bucket = next((bound for bound in BULK_BUCKETS if seconds <= bound), None)
    if bucket is not None:
        pipe.hincrby(key, f"in:{bucket}", 1)
    pipe.hincrby(key, "count", 1)
    pipe.hincrbyfloat(key, "sum", seconds)
    pipe.hincrby(key, "documents", documents)
    if own:
        pipe.execute()


def bulk_histogram(name: str) -> dict:
    raw = {k.decode(): v.decode() for k, v in get_redis().hgetall(BULK_KEY.format(name=name)).items()}
    buckets, below = [], 0
    for bound in BULK_BUCKETS:
        below += int(raw.get(f"in:{bound}", 0))
        # "le:" fields: cumulative counts an earlier version stored; they add up with the new ones.
        buckets.append((bound, below + int(raw.get(f"le:{bound}", 0))))
    return {
        "buckets": buckets,
        "count": int(raw.get("count", 0)),
        "sum": float(raw.get("sum", 0.0)),
        "documents": int(raw.get("documents", 0)),
    }

"""Is each relay and consumer thread alive, and how often has it failed?

Pipeline threads run in worker processes; /metrics, /healthz and the console run
in the web process. Liveness is therefore shared through Redis: consumers
already publish a heartbeat with their state (``stats.publish_state``); the
relay publishes one here, and the supervisor counts every thread failure and
restart here, so an operator sees a crash loop, not just its absence.
"""

from __future__ import annotations

import json
import time

from indexing.core import stats
from indexing.core.redis_store import get_redis
from indexing.conf import searchsync_settings

RELAY_KEY = "searchsync:relay-heartbeat"
SUPERVISOR_KEY = "searchsync:supervisor:{thread}"
SUPERVISED_KEY = "searchsync:supervised-threads"
# The relay may sit in a Kafka flush for up to its delivery timeout (35 s) without looping.
RELAY_TTL_S = 60


def relay_beat(relay_id: str) -> None:
    pipe = get_redis().pipeline(transaction=False)
    pipe.hset(RELAY_KEY, relay_id, json.dumps({"updated": time.time()}))
    pipe.expire(RELAY_KEY, RELAY_TTL_S * 10)
    pipe.execute()


def relay_gone(relay_id: str) -> None:
    get_redis().hdel(RELAY_KEY, relay_id)


def live_relays() -> int:
    now = time.time()
    return sum(1 for raw in get_redis().hvals(RELAY_KEY) if now - json.loads(raw).get("updated", 0) <= RELAY_TTL_S)


def live_consumers(blueprint_name: str) -> int:
    return len(stats.consumer_states(blueprint_name))


def record_failure(thread: str, error: str, restarting: bool) -> None:
    """One thread failure (and whether the supervisor restarts it), counted across processes."""
    key = SUPERVISOR_KEY.format(thread=thread)
    pipe = get_redis().pipeline(transaction=False)
    pipe.sadd(SUPERVISED_KEY, thread)
    pipe.hincrby(key, "failures", 1)
    if restarting:
        pipe.hincrby(key, "restarts", 1)
    pipe.hset(key, mapping={"last_error": error[:500], "last_failure_at": time.time()})
    pipe.execute()


def failures(thread: str) -> dict:
    raw = {k.decode(): v.decode() for k, v in get_redis().hgetall(SUPERVISOR_KEY.format(thread=thread)).items()}
    return {
        "failures": int(raw.get("failures", 0)),
        "restarts": int(raw.get("restarts", 0)),
        "last_error": raw.get("last_error", ""),
        "last_failure_at": float(raw["last_failure_at"]) if "last_failure_at" in raw else None,
    }


def supervised_threads() -> list[str]:
    return sorted(t.decode() for t in get_redis().smembers(SUPERVISED_KEY))


def consumer_thread(blueprint_name: str) -> str:
    return f"consumer-{blueprint_name}"


RELAY_THREAD = "outbox-relay"


def pipeline_liveness(blueprint_names: list[str]) -> dict:
    """What /healthz reports: live consumers per enabled blueprint and live relays; ``ok`` is False
    when any blueprint has no consumer (or the relay publishes and none is alive)."""

    consumers = {name: live_consumers(name) for name in blueprint_names}
    body: dict = {"consumers": consumers}
    ok = all(consumers.values())
    if searchsync_settings.PUBLISHER == "relay":
        body["relays"] = live_relays()
        ok = ok and body["relays"] > 0
    body["ok"] = ok
    return body

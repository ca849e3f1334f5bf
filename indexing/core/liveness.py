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

from indexing.core import membership, source_databases, stats
from indexing.core.redis_store import get_redis
from indexing.conf import searchsync_settings

RELAY_KEY = "searchsync:relay-heartbeat"
RELAY_COUNTERS_KEY = "searchsync:relay-counters"  # rows relayed, failed, dead-lettered, by every relay
SUPERVISOR_KEY = "searchsync:supervisor:{thread}"
SUPERVISED_KEY = "searchsync:supervised-threads"
# The relay may sit in a Kafka flush for up to its delivery timeout (35 s) without looping.
RELAY_TTL_S = 60


def relay_beat(relay_id: str, source: str = "default", counts: dict[str, int] | None = None) -> None:
    """The relay's heartbeat, with what it counted since its last one: the counters ride on the
    beat (once a second) rather than costing a Redis round trip every round."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.hset(RELAY_KEY, relay_id, json.dumps({"updated": time.time(), "source": source}))
    pipe.expire(RELAY_KEY, RELAY_TTL_S * 10)
    add_relay_counts(counts or {}, pipe)
    pipe.execute()


def add_relay_counts(counts: dict[str, int], pipe=None) -> None:
    """Add to the relay counters; into ``pipe`` (a Redis pipeline the caller executes) if given."""
    stats.add_counts(RELAY_COUNTERS_KEY, pipe, **counts)


def relay_counters() -> dict[str, int]:
    """Rows every relay has published (``relayed``), failed to get acknowledged and will retry
    (``failed``), and dead-lettered as unpublishable (``dead_lettered``), up to their last beats."""
    return {k.decode(): int(v) for k, v in get_redis().hgetall(RELAY_COUNTERS_KEY).items()}


def relay_gone(relay_id: str) -> None:
    get_redis().hdel(RELAY_KEY, relay_id)


def live_relays() -> int:
    return sum(live_relays_by_source().values())


def live_relays_by_source() -> dict[str, int]:
    """Relays with a fresh heartbeat, per source database (each source's outbox needs its own)."""
    now = time.time()
    live: dict[str, int] = {}
    for raw in get_redis().hvals(RELAY_KEY):
        beat = json.loads(raw)
        if now - beat.get("updated", 0) <= RELAY_TTL_S:
            source = beat.get("source", "default")
            live[source] = live.get(source, 0) + 1
    return live


def live_consumer_states(blueprint_name: str) -> dict[str, dict]:
    """Consumers of the blueprint still in its Kafka group with a fresh heartbeat (``membership``)."""
    group = f"{searchsync_settings.CONSUMER_GROUP_PREFIX}{blueprint_name}"  # IndexBlueprint.consumer_group
    found = membership.members([group])
    return membership.live(stats.consumer_states(blueprint_name), None if found is None else found.get(group, []))


def live_consumers(blueprint_name: str) -> int:
    return len(live_consumer_states(blueprint_name))


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


def relay_thread(source: str) -> str:
    """The relay thread of a source database: searchsync's own keeps the plain name."""
    return RELAY_THREAD if source == "default" else f"{RELAY_THREAD}-{source}"


def pipeline_liveness(blueprint_names: list[str]) -> dict:
    """What /healthz reports: live consumers per enabled blueprint and live relays; ``ok`` is False
    when any blueprint has no consumer (or the relay publishes and a source database has no live relay)."""

    consumers = {name: live_consumers(name) for name in blueprint_names}
    body: dict = {"consumers": consumers}
    ok = all(consumers.values())
    if searchsync_settings.PUBLISHER == "relay":
        by_source = live_relays_by_source()
        body["relays"] = sum(by_source.values())
        ok = ok and body["relays"] > 0
        sources = source_databases.declared()
        if len(sources) > 1:
            body["relays_by_source"] = {name: by_source.get(name, 0) for name in sources}
            ok = ok and all(body["relays_by_source"].values())
    body["ok"] = ok
    return body

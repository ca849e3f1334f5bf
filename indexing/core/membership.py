"""Who is in a blueprint's consumer group, as the Kafka broker sees it.

A consumer's heartbeat in Redis lives 30 s (``stats.STATE_TTL_S``): long enough that a consumer
busy in a slow commit is not reported dead, and so long that a SIGKILLed one went on counting as
live for up to 30 s. The broker drops a member that stops heartbeating after the consumer's
``session.timeout.ms`` (10 s, ``consumer.consumer_config``), so a consumer counts as live only
while its group still has it as a member (its Kafka ``client.id`` is its consumer id) and its
heartbeat is fresh. When the broker cannot be asked, heartbeats alone decide.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings

from django.conf import settings

log = logging.getLogger(__name__)

# list_groups, not describe_consumer_groups: with librdkafka 2.12.1 a describe that timed out while the
# broker was away aborts the whole process once the broker is back (rdkafka_queue.h: assertion
# `eonce->refcnt > 0`; reproduced with a broker stopped and started). The older synchronous call does not.
warnings.filterwarnings("ignore", message=r"list_groups\(\) is deprecated", category=DeprecationWarning)

TIMEOUT_S = 3.0
CACHE_S = 1.0  # one scrape or page asks once for all its blueprints
DOWN_S = 5.0  # after a failed ask, heartbeats alone for this long instead of a timeout per call

_lock = threading.Lock()
# One client per process and bootstrap servers, kept: a new one per call would cost a connection and threads.
_admins: dict[tuple[int, str], object] = {}
_cache: dict[tuple[str, str], tuple[float, list[str]]] = {}  # (servers, group) -> (when, client ids)
_down_until: dict[str, float] = {}


def _client(servers: str):
    from confluent_kafka.admin import AdminClient

    key = (os.getpid(), servers)  # a forked process needs its own
    if key not in _admins:
        _admins[key] = AdminClient({"bootstrap.servers": servers})
    return _admins[key]


def members(groups: list[str]) -> dict[str, list[str]] | None:
    """The ``client.id`` of each group's members (an unknown group has none), or None when the broker
    did not answer."""
    servers = settings.KAFKA_BOOTSTRAP_SERVERS
    now = time.monotonic()
    with _lock:
        if now < _down_until.get(servers, 0.0):
            return None
        fresh = {}
        for group in groups:
            at, ids = _cache.get((servers, group), (None, None))
            if at is not None and now - at < CACHE_S:
                fresh[group] = ids
        missing = [g for g in groups if g not in fresh]
        if not missing:
            return fresh
        try:
            for group in missing:
                ids = [m.client_id for found in _client(servers).list_groups(group, timeout=TIMEOUT_S)
                       if found.id == group for m in found.members]
                _cache[(servers, group)] = (now, ids)
                fresh[group] = ids
        except Exception as exc:  # the broker is away: the caller falls back to heartbeats
            log.warning("consumer group membership unavailable (%s); counting heartbeats alone", exc)
            _down_until[servers] = now + DOWN_S
            return None
    return fresh


def live(states: dict[str, dict], group_members: list[str] | None) -> dict[str, dict]:
    """The heartbeats (consumer id -> state) of consumers still in their group.

    A member whose client id names no heartbeat (a consumer started before consumers set their
    client id) vouches for one heartbeat that no member names, so such consumers are counted by the
    broker's member count until they are restarted."""
    if group_members is None:
        return states
    in_group = set(group_members)
    kept = {cid: s for cid, s in states.items() if cid in in_group}
    unattributed = sum(1 for m in group_members if m not in states)
    for cid, state in states.items():
        if unattributed <= 0:
            break
        if cid not in kept:
            kept[cid] = state
            unattributed -= 1
    return kept

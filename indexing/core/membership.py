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

from django.conf import settings

log = logging.getLogger(__name__)

TIMEOUT_S = 3.0
CACHE_S = 1.0  # one scrape or page asks once for all its blueprints
DOWN_S = 5.0  # after a failed ask, heartbeats alone for this long instead of a timeout per call

_lock = threading.Lock()
_admin = None
_admin_for = None  # (pid, bootstrap servers) the client was made for: a forked process needs its own
_cache: dict[tuple[str, str], tuple[float, list[str]]] = {}  # (servers, group) -> (when, client ids)
_down_until: dict[str, float] = {}


def _client(servers: str):
    global _admin, _admin_for
    from confluent_kafka.admin import AdminClient

    if _admin is None or _admin_for != (os.getpid(), servers):
        _admin = AdminClient({"bootstrap.servers": servers})
        _admin_for = (os.getpid(), servers)
    return _admin


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
            futures = _client(servers).describe_consumer_groups(missing, request_timeout=TIMEOUT_S)
            for group, future in futures.items():
                ids = [m.client_id for m in future.result(timeout=TIMEOUT_S + 1).members]
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

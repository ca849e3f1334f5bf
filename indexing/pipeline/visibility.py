"""Read-your-writes: wait, bounded, until a write just made is searchable.

No search request per waiting client. The pieces:

1. ``capture()`` around the write records what ``outbox.emit`` publishes (aggregate, entity,
   version) and, *before the transaction commits*, registers a waiter for the aggregate type
   in Redis (a sorted set of deadlines). The event cannot reach a consumer before the commit,
   so the consumer is certain to see the waiter when it writes the document.
2. The document writer (``writer.write_documents``) asks Redis once per batch whether anyone
   waits on its aggregate; only then it records, per index and entity, the highest version the
   engine acknowledged and when (``acknowledge``). With nobody waiting, that costs one ZCOUNT.
3. ``wait_searchable`` polls those acknowledgements in Redis. A document the engine has
   acknowledged is searchable at the latest one refresh interval later (the interval of that
   index, from its settings: a sidecar's 1 s, a main index's 30 s); a shard idle for searches
   skips scheduled refreshes but then refreshes before answering the next search, so the bound
   holds for searchers. The answer is ``searchable`` once every live index of the aggregate
   (sidecars included) is past that point, or ``timeout`` with the lag so far and what each
   index is still missing.

Any registered model gets this: its writes go through ``outbox.emit`` (``registry.emit_change``).
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from django.conf import settings

log = logging.getLogger(__name__)

WAITERS_KEY = "searchsync:ryw:waiters:{aggregate}"
ACK_KEY = "searchsync:ryw:ack:{index}:{entity}"
ACK_TTL_S = 300
MAX_TIMEOUT_S = 30.0
POLL_S = 0.02

# Keep the highest acknowledged version: a backfill or a replay may acknowledge an older one later.
_ACK_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current then
  local v = tonumber(string.match(current, '^(%-?%d+)'))
  if v and v >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
return 1
"""

_client = None
_script = None


def _redis():
    global _client, _script
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        _script = _client.register_script(_ACK_SCRIPT)
    return _client


# -- the consumer's side -------------------------------------------------------------


def waiting(aggregate_type: str, now: float | None = None) -> bool:
    return bool(_redis().zcount(WAITERS_KEY.format(aggregate=aggregate_type), now or time.time(), "+inf"))


def acknowledge(aggregate_type: str, actions, acked_at: float, unchanged=()) -> int:
    """Record, for each indexed action (index, id, version), that the engine holds that version.

    ``unchanged``: (index, id, version, acked_at) of main parts the event left as they were (not
    sent, ``sidecar_only.py``): they hold the version with the content acknowledged at acked_at, so a
    price change waits for its sidecar, not for a main index it did not touch."""
    import redis

    if not actions and not unchanged:
        return 0
    try:
        if not waiting(aggregate_type):
            return 0
        entries = [(a.index, a.id, a.version, acked_at) for a in actions] + list(unchanged)
        pipe = _redis().pipeline(transaction=False)
        for index, entity_id, version, at in entries:
            _script(keys=[ACK_KEY.format(index=index, entity=entity_id)],
                    args=[int(version), f"{at:.3f}", ACK_TTL_S], client=pipe)
        pipe.execute()
    except redis.RedisError as exc:
        # The documents are written; only waiting clients lose out (they time out). Never fail the batch for it.
        log.warning("read-your-writes acknowledgements not recorded: %s", exc)
        return 0
    return len(entries)


# -- the writer's side ---------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    aggregate_type: str
    entity_id: str
    version: int


@dataclass
class Capture:
    deadline: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    writes: list[Written] = field(default_factory=list)
    aggregates: set[str] = field(default_factory=set)
    committed_at: float | None = None


_current: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("searchsync_visibility", default=None)


@contextmanager
def capture(timeout_s: float):
    """Around a write whose caller will wait: collects what the outbox publishes, registers the waiter."""
    current = Capture(deadline=time.time() + timeout_s + 5)  # a margin for the write itself
    reset = _current.set(current)
    try:
        yield current
        current.committed_at = time.time()
    finally:
        _current.reset(reset)


def emitted(aggregate_type: str, entity_id: str, version: int) -> None:
    """Called by ``outbox.emit`` inside the write's transaction."""
    current = _current.get()
    if current is None:
        return
    current.writes.append(Written(aggregate_type, str(entity_id), int(version)))
    if aggregate_type not in current.aggregates:
        current.aggregates.add(aggregate_type)
        _redis().zadd(WAITERS_KEY.format(aggregate=aggregate_type), {current.token: current.deadline})


def release(current: Capture) -> None:
    client = _redis()
    now = time.time()
    for aggregate in current.aggregates:
        key = WAITERS_KEY.format(aggregate=aggregate)
        client.zrem(key, current.token)
        client.zremrangebyscore(key, "-inf", now)  # waiters that died without releasing


# -- waiting --------------------------------------------------------------------------


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 0.001}  # a bare number is milliseconds


def refresh_seconds(value) -> float | None:
    """An index's refresh interval in seconds; None when refresh is off ("-1")."""
    if value is None:
        return 1.0
    match = _DURATION.match(str(value).strip())
    if not match:
        return None
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass(frozen=True)
class Target:
    index: str
    refresh_s: float | None


def live_targets(aggregate_type: str) -> list[Target]:
    """Every index search clients read for the aggregate: live indices of enabled blueprints and their sidecars."""
    from indexing.models import PhysicalIndex

    targets = []
    for name, index_settings, side in PhysicalIndex.objects.filter(
            blueprint__aggregate_type=aggregate_type, blueprint__enabled=True,
            state=PhysicalIndex.State.LIVE).values_list("name", "settings", "sidecar"):
        targets.append(Target(name, refresh_seconds(index_settings.get("refresh_interval"))))
        if side:
            targets.append(Target(side["name"], refresh_seconds(side["settings"].get("refresh_interval"))))
    return targets


@dataclass
class IndexState:
    index: str
    acknowledged_version: int | None = None
    acknowledged_at: float | None = None
    refresh_interval_s: float | None = None
    searchable_at: float | None = None


@dataclass
class Outcome:
    outcome: str  # "searchable", "timeout", or "not_waited" (a cap on concurrent waits was full)
    waited_ms: float
    lag_ms: float  # commit → searchable, or commit → now for a timeout
    indices: list[IndexState]
    reason: str = ""  # not_waited: why
    limit: str = ""  # not_waited: which cap, "user" or "process"
    at: float = 0.0  # when the answer was made: what is searchable, pending or expected is said as of then

    def as_json(self) -> dict:
        indices = []
        for s in self.indices:
            entry = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(s).items()}
            entry.update(index_status(s, self.at))
            indices.append(entry)
        body = {"outcome": self.outcome, "waited_ms": round(self.waited_ms, 1), "lag_ms": round(self.lag_ms, 1),
                "waited_on": sorted({s.index for s in self.indices}),
                "pending": sorted({i["index"] for i in indices if i["status"] != "searchable"}),
                "indices": indices}
        if self.outcome == "not_waited":
            body.update(reason=self.reason, limit=self.limit)
        return body


def index_status(state: IndexState, at: float) -> dict:
    """Where one index stands for the write at ``at``: searchable; refreshing (acknowledged, searchable
    within one refresh: ``expected_in_ms``); or not yet indexed (the consumer has not written it; once it
    has, it is searchable within ``refresh_interval_s``)."""
    if state.searchable_at is not None and state.searchable_at <= at:
        return {"status": "searchable", "expected_in_ms": 0.0}
    if state.searchable_at is not None:
        return {"status": "refreshing", "expected_in_ms": round((state.searchable_at - at) * 1000, 1)}
    return {"status": "not_indexed", "expected_in_ms": None}


def not_waited(current: Capture, reason: str, limit: str, *, clock=time.time) -> Outcome:
    """The answer of a write whose wait was refused: at once, with the lag so far."""
    now = clock()
    return Outcome("not_waited", 0.0, (now - (current.committed_at or now)) * 1000, [], reason, limit, at=now)


def wait_searchable(current: Capture, timeout_s: float, *, clock=time.time, sleep=time.sleep) -> Outcome:
    """Block until every write of ``current`` is searchable in every live index, or ``timeout_s`` passed."""
    started = clock()
    committed = current.committed_at or started
    deadline = started + min(timeout_s, MAX_TIMEOUT_S)
    pending = [(w, t) for w in current.writes for t in live_targets(w.aggregate_type)]
    states = {(w.entity_id, t.index): IndexState(t.index, refresh_interval_s=t.refresh_s) for w, t in pending}
    try:
        while True:
            now = clock()
            if pending:
                keys = [ACK_KEY.format(index=t.index, entity=w.entity_id) for w, t in pending]
                still = []
                for (w, t), raw in zip(pending, _redis().mget(keys)):
                    state = states[(w.entity_id, t.index)]
                    if raw:
                        version, at = raw.decode().split()
                        state.acknowledged_version, state.acknowledged_at = int(version), float(at)
                    if state.acknowledged_version is not None and state.acknowledged_version >= w.version \
                            and t.refresh_s is not None:
                        state.searchable_at = state.acknowledged_at + t.refresh_s
                    else:
                        still.append((w, t))
                pending = still
            if not pending:
                searchable_at = max((s.searchable_at for s in states.values()), default=now)
                if searchable_at <= deadline:
                    if searchable_at > now:
                        sleep(searchable_at - now)
                    end = max(searchable_at, now)
                    return Outcome("searchable", (end - started) * 1000, (end - committed) * 1000,
                                   list(states.values()), at=end)
            if now >= deadline:
                return Outcome("timeout", (now - started) * 1000, (now - committed) * 1000, list(states.values()),
                               at=now)
            # Everything acknowledged but its refresh falls after the deadline: no point polling.
            sleep(max(0.0, deadline - now) if not pending else min(POLL_S, max(0.0, deadline - now)))
    finally:
        release(current)

"""searchsync's settings: each one declared once, with its environment variable, type, default and meaning.

Code reads attributes of ``searchsync_settings`` (``searchsync_settings.BATCH_SIZE``), never raw
keys, in the way DRF's ``api_settings`` works. The values live in one Django setting,
``SEARCHSYNC``, a dict that ``config/settings.py`` builds from the environment with
``from_environment()``; a key missing from it takes its declared default, so tests and
deployments override only what they change (``settings.SEARCHSYNC = {**settings.SEARCHSYNC, ...}``).
Every attribute is read at access time, so an override applies at once.

The attribute of a setting is its environment variable without the ``SEARCHSYNC_`` prefix:
``SEARCHSYNC_BACKFILL_STALE_CHUNK_S`` is ``searchsync_settings.BACKFILL_STALE_CHUNK_S``.
``manage.py searchsync_settings`` prints them all with their current values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from django.conf import settings as django_settings

PREFIX = "SEARCHSYNC_"


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    meaning: str

    @property
    def env(self) -> str:
        return PREFIX + self.name

    @property
    def kind(self) -> str:
        return {int: "int", float: "float", str: "str", _csv: "list", _optional_int: "int or unset"}[self.parse]


_MiB = 1024 * 1024

DECLARED: tuple[Setting, ...] = (
    # --- Kafka topics and consumer groups
    Setting("TOPIC_PREFIX", "searchsync.", str, "topic of an aggregate = prefix + aggregate type"),
    Setting("TOPIC_PARTITIONS", 4, int, "partitions of topics searchsync creates"),
    Setting("TOPIC_REPLICATION_FACTOR", 1, int,
            "replication factor of topics searchsync creates (3 on a three-broker cluster)"),
    Setting("TOPIC_MIN_INSYNC_REPLICAS", 0, int,
            "min.insync.replicas of those topics; 0 keeps the broker's default (2 with replication factor 3)"),
    Setting("CONSUMER_GROUP_PREFIX", "searchsync-indexer.", str, "group of a blueprint = prefix + name"),
    # --- the consumer
    Setting("INDEX_REPLICAS", None, _optional_int,
            "number_of_replicas of every index searchsync creates; unset: the blueprint's"),
    # 5,000: the node's best bulk size for documents of a few hundred bytes (bench/README.md, the ceiling);
    # BULK_MAX_BYTES splits a batch of large documents.
    Setting("BATCH_SIZE", 5000, int, "consumer batch size"),
    # 10 MiB: http.max_content_length of the smallest managed OpenSearch instances; a node refuses a
    # larger body as a whole.
    Setting("BULK_MAX_BYTES", 10 * _MiB, int,
            "largest bulk request body writers send; a batch over it goes in several requests"),
    Setting("BATCH_WAIT_MS", 100, int, "longest wait for a batch's first message"),
    Setting("BULKS_IN_FLIGHT", 1, int, "bulk requests a consumer keeps on the wire while it prepares the next "
            "batch (it resolves one more answer meanwhile)"),
    Setting("GIL_SWITCH_INTERVAL_MS", 0.5, float,
            "how long a thread of a consumer, relay or backfill process may keep the GIL while another waits "
            "(CPython's default is 5): a bulk thread reads its answer and sends the next request without waiting "
            "behind the thread preparing a batch; 0: the interpreter's own"),
    Setting("MIN_BATCH_SIZE", 10, int, "smallest batch under backpressure"),
    Setting("TRANSIENT_RETRIES", 8, int,
            "retries of a 500/502/504 bulk item before it is dead-lettered (429 and 'not ready' retry without limit)"),
    Setting("RETRY_BASE_MS", 100, int, "exponential backoff with full jitter: first delay"),
    Setting("RETRY_MAX_MS", 10_000, int, "exponential backoff with full jitter: longest delay"),
    Setting("MAX_DOCUMENT_BYTES", 1_000_000, int, "larger documents are dead-lettered as too large"),
    Setting("SIDECAR_ONLY_MEMORY", 200_000, int,
            "main documents per consumer whose last written content is remembered, so an event that changed "
            "only sidecar fields does not rewrite the main index; 0: every event rewrites both"),
    # Above MAX_DOCUMENT_BYTES on purpose: an oversized event still reaches Kafka and the consumer
    # dead-letters it with its bytes; beyond this the relay dead-letters it.
    Setting("MAX_MESSAGE_BYTES", 8 * _MiB, int,
            "largest Kafka message publishers send; max.message.bytes of the topics searchsync creates"),
    Setting("BACKPRESSURE_QUEUE_RATIO", 0.8, float, "write-queue fill that pauses consumers"),
    Setting("BACKPRESSURE_CHECK_S", 1.0, float, "how often a consumer reads the node's write queue"),
    # --- the relay and the outbox
    Setting("RELAY_BATCH_SIZE", 500, int, "outbox rows the relay publishes per round"),
    Setting("RELAY_POLL_S", 1.0, float, "longest wait for a wake-up before the relay polls (with "
            "RELAY_IDLE_PROBE_MS at 0; otherwise the idle probe is the poll)"),
    Setting("RELAY_WAKEUP_INTERVAL_MS", 20, int,
            "a process pushes at most one relay wake-up per interval; commits in between coalesce"),
    Setting("OUTBOX_RETENTION_HOURS", 24.0, float, "published outbox rows are deleted after this"),
    Setting("EMIT_MAX_PAYLOAD_BYTES", None, _optional_int,
            "largest payload (bytes of payload::text) searchsync_emit() accepts; unset: MAX_MESSAGE_BYTES. "
            "Baked into the installed function: run manage.py outbox install after a change"),
    Setting("RELAY_IDLE_PROBE_MS", 50, int,
            "while idle, the relay checks this often whether unpublished rows exist (catches writers that "
            "send no wake-up, such as SQL callers of searchsync_emit); 0: wake-ups and RELAY_POLL_S only"),
    Setting("RELAY_IDLE_PROBE_MAX_MS", 250, int,
            "after a second without rows the idle probe slows down to this interval (an idle relay costs "
            "next to nothing); the first row found brings back RELAY_IDLE_PROBE_MS"),
    Setting("RELAY_LINGER_MS", 100, int,
            "while rows trickle in, relay rounds start at most this far apart, so a round (and the "
            "consumer's batch behind it) carries several events; a full round goes on at once; 0: no linger"),
    Setting("RELAY_LINGER_EVENTS", 18, int,
            "the linger is the time this many rows take to arrive at the current rate (within "
            "RELAY_LINGER_MIN_MS and RELAY_LINGER_MS): higher rates wait less; 0: always RELAY_LINGER_MS"),
    Setting("RELAY_LINGER_MIN_MS", 45, int,
            "the shortest linger however high the rate: bounds the rounds per second, and so their CPU"),
    Setting("JOINED_CHANGES_POLL_S", 1.0, float,
            "how often a --cdc worker drains the changes of tables declared blueprints join (depends_on) "
            "into fan-outs; no query while no enabled declared blueprint has a dependency"),
    # --- freshness
    Setting("FRESHNESS_BUDGET_MS", 2000, int,
            "time the pipeline may take on top of an index's refresh interval: each index's freshness p99 "
            "threshold is its refresh interval plus this, unless its blueprint sets one"),
    Setting("CANARY_INTERVAL_S", 5.0, float, "how often a canary is written through each blueprint's pipeline"),
    Setting("CANARY_TIMEOUT_S", 30.0, float, "a canary not searchable after this counts as lost"),
    # --- read-your-writes waits of API writes (a wait holds a web thread for up to its timeout)
    Setting("WAITS_PER_PROCESS", 4, int,
            "read-your-writes waits one web process runs at once; keep it below WEB_THREADS"),
    Setting("WAITS_PER_USER", 4, int, "read-your-writes waits one user runs at once, over all web processes"),
    Setting("WEB_THREADS", 8, int,
            "threads of each gunicorn worker (gunicorn.conf.py); more than WAITS_PER_PROCESS, so waits "
            "always leave threads for other requests"),
    # --- processes
    Setting("CDC_BLUEPRINTS", [], _csv, "comma-separated blueprints a --cdc worker consumes; empty: all enabled"),
    Setting("BLUEPRINT_RELOAD_S", 10.0, float,
            "how often a pipeline process re-reads the blueprints: starts consumers of newly enabled ones, "
            "stops those of disabled or deleted ones, and refreshes the relay's known aggregate types"),
    Setting("SUPERVISOR_MAX_FAILURES", 5, int,
            "thread failures within the window that make a worker exit non-zero"),
    Setting("SUPERVISOR_WINDOW_S", 300.0, float, "the window of SUPERVISOR_MAX_FAILURES"),
    Setting("SUPERVISOR_BACKOFF_BASE_S", 1.0, float, "restart backoff of a failed pipeline thread: first delay"),
    Setting("SUPERVISOR_BACKOFF_MAX_S", 30.0, float, "restart backoff of a failed pipeline thread: longest delay"),
    # --- backfills and cutovers
    Setting("REPLICA_ALIAS", "replica", str, "database alias backfills, guards and reconciliation read from"),
    Setting("BACKFILL_DB_LATENCY_BOUND_MS", 500, int, "a slower source page halves the backfill rate"),
    Setting("BACKFILL_STATEMENT_TIMEOUT_MS", 30_000, int, "statement timeout of backfill reads"),
    # The node indexes a request of 5,000 documents for less per document than one of a 500-row page
    # (bench/README.md): consecutive pages go in one request; pages stay small for the source database.
    Setting("BACKFILL_BULK_DOCS", 5000, int,
            "documents a backfill worker sends in one bulk request, consecutive pages joined; a throttled "
            "backfill joins at most a quarter second of its rate"),
    Setting("BACKFILL_STALE_CHUNK_S", 60, int, "a running chunk untouched this long is taken over"),
    Setting("CUTOVER_ROLLBACK_HOURS", 24.0, float, "how long a cutover can be rolled back"),
    Setting("FANOUT_ROWS_PER_SECOND", 5000, int,
            "rows/s of the fan-out a change to a joined row starts; changeable per fan-out"),
    # --- alerts
    Setting("ALERT_WEBHOOK_URL", "", str, "where alerts are POSTed as JSON; empty: console only"),
    Setting("ALERT_WEBHOOK_TIMEOUT_S", 5.0, float, "timeout of an alert webhook call"),
    Setting("ALERT_FRESHNESS_WINDOW_S", 300, int, "window of the freshness alert's p99"),
    # --- Debezium
    Setting("PUBLISHER", "relay", str,
            "relay or debezium: who moves outbox rows to Kafka (with debezium a --cdc worker starts no relay)"),
    Setting("CONNECT_URL", "http://127.0.0.1:8083", str, "Kafka Connect's REST API"),
    Setting("SLOT_PREFIX", "searchsync", str, "prefix of connector and replication slot names"),
    Setting("SLOT_LAG_ALERT_BYTES", 512 * _MiB, int, "retained WAL past which a slot raises an alert"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in DECLARED}


# Settings that no longer exist: a deployment still setting one is told at start, not ignored.
REMOVED = {
    "SEARCHSYNC_FRESHNESS_THRESHOLD_MS": "each index's threshold is now its refresh interval plus "
                                         "SEARCHSYNC_FRESHNESS_BUDGET_MS, or the blueprint's freshness_threshold_ms",
}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every declared setting, parsed from its environment variable or defaulted (config/settings.py)."""
    environ = os.environ if environ is None else environ
    removed = [f"{name} is no longer read: {why}" for name, why in REMOVED.items() if name in environ]
    if removed:
        raise ValueError("; ".join(removed))
    values = {}
    for s in DECLARED:
        raw = environ.get(s.env)
        values[s.name] = s.parse(raw) if raw is not None else s.default
    return values


class SearchsyncSettings:
    """Attribute access to the declared settings; an undeclared name is an AttributeError, not a None."""

    def __getattr__(self, name: str) -> Any:
        declared = BY_NAME.get(name)
        if declared is None:
            raise AttributeError(f"{name} is not a searchsync setting (indexing/conf.py declares them)")
        return getattr(django_settings, "SEARCHSYNC", {}).get(name, declared.default)

    def __dir__(self):
        return list(BY_NAME)


searchsync_settings = SearchsyncSettings()

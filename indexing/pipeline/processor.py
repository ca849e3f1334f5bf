"""One batch of Kafka messages, from raw bytes to resolved outcomes.

The steps: decode and validate → keep the highest version per entity → write
the documents to every write target (``writer.plan_writes``: build, drop
unmapped fields; ``writer.send_writes``: bulk with external versions,
dead-letter what is permanent). ``prepare`` is the Python half and
``complete`` the I/O half, so the consumer can overlap one batch's Python work
with the previous batch's bulk.
``process`` returns only once every message of the batch is resolved; the
consumer commits offsets after that and never before (see consumer.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field


from indexing.pipeline import dead_letters
from indexing.core import freshness_samples
from indexing.core import stats
from indexing.core.redis_store import get_redis
from indexing.blueprints.contracts import Contract, Event, Incoming, InvalidEvent
from indexing.pipeline.dead_letters import Letter
from indexing.pipeline.debezium import decode_table_change
from indexing.models import EventFormat, IndexBlueprint
from indexing.pipeline.bulk_sink import BulkSink
from indexing.blueprints.table_sources import change_source
from indexing.pipeline.live_blueprint import LiveBlueprint
from indexing.pipeline.sidecar_only import MainWrites
from indexing.pipeline.writer import WritePlan, plan_writes, prebuild_body, send_writes
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    messages: int = 0
    indexed: int = 0
    stale: int = 0
    superseded: int = 0
    main_unchanged: int = 0  # main parts not rewritten: the event changed only sidecar fields
    dead_lettered: int = 0
    retried: int = 0
    rejected_429: int = 0
    not_ready: int = 0
    unavailable_waits: int = 0
    dropped_fields: Counter = field(default_factory=Counter)
    # What ``record`` reports after the batch is resolved: bulk timing, documents, commit → ack lags.
    bulk_seconds: float = 0.0
    documents: int = 0
    acked_at: float = 0.0
    lags_ms: list = field(default_factory=list, repr=False)


def decode_all(messages: list[Incoming], blueprint: IndexBlueprint, contract: Contract | None = None):
    """Valid events and invalid messages of a batch; Debezium's Kafka tombstones are dropped."""
    valid: list[tuple[Incoming, Event]] = []
    invalid: list[tuple[Incoming, InvalidEvent]] = []
    contract = contract or Contract(blueprint.event_schema, aggregate_type=blueprint.aggregate_type)
    table_changes = blueprint.event_format == EventFormat.DEBEZIUM_TABLE
    source = change_source(blueprint) if table_changes else None
    for msg in messages:
        try:
            if table_changes:
                event = decode_table_change(msg.value, blueprint.aggregate_type, source)
                if event is None:
                    continue
                contract.validate(event)
            else:
                event = contract.decode(msg.value)
            valid.append((msg, event))
        except InvalidEvent as exc:
            invalid.append((msg, exc))
    return valid, invalid


def newest_per_entity(valid: list[tuple[Incoming, Event]]):
    """Keep, per entity, the event with the highest version; the rest are superseded in this batch."""
    winners: dict[str, tuple[Incoming, Event]] = {}
    for msg, event in valid:
        current = winners.get(event.entity_id)
        if current is None or event.version > current[1].version:
            winners[event.entity_id] = (msg, event)
    superseded = len(valid) - len(winners)
    return list(winners.values()), superseded


def with_several_events(valid: list[tuple[Incoming, Event]]) -> set[str]:
    """Entities with more than one event in the batch: their superseded events were never compared
    with what the main index holds, so their main part is written whatever its content."""
    seen: set[str] = set()
    several: set[str] = set()
    for _, event in valid:
        (several if event.entity_id in seen else seen).add(event.entity_id)
    return several


class NoWriteTarget(RuntimeError):
    pass


class BatchProcessor:
    def __init__(self, blueprint: IndexBlueprint, sink: BulkSink):
        self.blueprint = blueprint
        self.sink = sink
        self.max_document_bytes = searchsync_settings.MAX_DOCUMENT_BYTES
        # Schema, builder, delete mode and write targets may change while we run: read every batch.
        self.live = LiveBlueprint(blueprint)
        self._contract: Contract | None = None
        # What each main index holds, so an event that changed only sidecar fields skips it.
        self.main_writes = MainWrites()

    def forget_main_writes(self) -> None:
        """After a rebalance: another consumer may have written the main documents meanwhile."""
        self.main_writes.clear()

    def process(self, messages: list[Incoming]) -> BatchReport:
        report = self.complete(self.prepare(messages))
        self.record(report)
        return report

    def prepare(self, messages: list[Incoming]) -> "PreparedBatch":
        """Decode, validate, keep the newest per entity and build the documents: the batch's Python work.

        Runs on the consumer's thread, possibly while the previous batch's bulk is in flight."""
        blueprint, targets = self.live.current()
        if blueprint is not self.blueprint or self._contract is None:
            # A reloaded blueprint (its digest changed) gets its schema's validator looked up again.
            self._contract = Contract(blueprint.event_schema, aggregate_type=blueprint.aggregate_type)
        self.blueprint = blueprint
        if not targets:
            raise NoWriteTarget(f"blueprint {blueprint.name} has no live or building index to write to")
        valid, invalid = decode_all(messages, blueprint, self._contract)
        winners, superseded = newest_per_entity(valid)
        plan = plan_writes(blueprint, targets, winners, max_document_bytes=self.max_document_bytes,
                           main_writes=self.main_writes,
                           superseding=with_several_events(valid) if superseded else frozenset())
        # The body too: serialised here, it is ready the moment the previous bulk returns.
        prebuild_body(plan, self.sink.chunk_size, self.sink.max_bytes)
        undecodable = [Letter(msg, exc.reason, exc.message, entity_id=_key(msg)) for msg, exc in invalid]
        return PreparedBatch(blueprint, len(messages), superseded, plan, undecodable)

    def complete(self, prepared: "PreparedBatch") -> BatchReport:
        """Send the prepared writes and resolve every message (dead letters stored); safe to run on a bulk
        thread. The batch's figures are left for ``record``, which need not delay the next bulk."""
        blueprint = prepared.blueprint
        report = BatchReport(messages=prepared.messages, superseded=prepared.superseded)
        result = send_writes(blueprint, prepared.plan, self.sink)
        undecodable = prepared.undecodable
        if undecodable:
            dead_letters.record(blueprint, undecodable)

        report.indexed = len(result.indexed)
        report.stale = result.stale
        report.main_unchanged = result.main_unchanged
        report.retried = result.retried
        report.rejected_429 = result.rejected_429
        report.not_ready = result.not_ready
        report.unavailable_waits = result.unavailable_waits
        report.dropped_fields = result.dropped_fields
        report.dead_lettered = len(result.dead) + len(undecodable)
        report.bulk_seconds, report.documents, report.acked_at = result.bulk_seconds, result.documents, result.acked_at
        report.lags_ms = [(result.acked_at - event.timestamp.timestamp()) * 1000 for event in result.indexed]
        for letter in undecodable + result.dead:
            msg = letter.message
            log.warning("dead-lettered %s[%s]@%s: %s %s", msg.topic, msg.partition, msg.offset, letter.reason,
                        letter.error[:200])
        return report

    def record(self, *reports: BatchReport) -> None:
        """Counters, bulk timing and freshness samples of resolved batches: one Redis round trip for all."""
        if not reports:
            return
        name = self.blueprint.name
        pipe = get_redis().pipeline(transaction=False)
        for report in reports:
            if report.documents:
                stats.observe_bulk(name, report.bulk_seconds, report.documents, pipe=pipe)
            freshness_samples.record(name, "event", report.lags_ms, at=report.acked_at, pipe=pipe)
        stats.incr(
            name,
            pipe=pipe,
            **{figure: sum(getattr(r, figure) for r in reports) for figure in (
                "indexed", "stale", "retried", "not_ready", "unavailable_waits", "dead_lettered", "superseded",
                "main_unchanged")},
            dropped_fields=sum(sum(r.dropped_fields.values()) for r in reports),
            batches=len(reports),
        )
        pipe.execute()


@dataclass
class PreparedBatch:
    blueprint: IndexBlueprint
    messages: int
    superseded: int
    plan: WritePlan
    undecodable: list[Letter]


def _key(msg: Incoming) -> str:
    return msg.key.decode("utf-8", errors="replace") if msg.key else ""

"""One batch of Kafka messages, from raw bytes to resolved outcomes.

The steps, each a small function: decode and validate → keep the highest
version per entity → build one document per write target (dropping unmapped
fields) → bulk write with external versions → dead-letter what is permanent.
``process`` returns only once every message of the batch is resolved; the
consumer commits offsets after that and never before (see consumer.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from . import dead_letters, freshness, stats
from .contracts import Event, InvalidEvent, decode_event, validate
from .debezium import decode_table_change
from .dead_letters import Incoming
from .documents import drop_unmapped, get_builder, tombstone_document
from .engines import BulkAction
from .models import DeleteMode, EventFormat, IndexBlueprint, PhysicalIndex
from .sources import get_source
from .sink import BulkSink

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    messages: int = 0
    indexed: int = 0
    stale: int = 0
    superseded: int = 0
    dead_lettered: int = 0
    retried: int = 0
    rejected_429: int = 0
    dropped_fields: Counter = field(default_factory=Counter)


@dataclass
class Target:
    name: str
    mappings: dict


def decode_all(messages: list[Incoming], blueprint: IndexBlueprint):
    """Valid events and invalid messages of a batch; Debezium's Kafka tombstones are dropped."""
    valid: list[tuple[Incoming, Event]] = []
    invalid: list[tuple[Incoming, InvalidEvent]] = []
    schema = blueprint.event_schema
    table_changes = blueprint.event_format == EventFormat.DEBEZIUM_TABLE
    source = get_source(blueprint.source_model) if table_changes else None
    for msg in messages:
        try:
            if table_changes:
                event = decode_table_change(msg.value, blueprint.aggregate_type, source)
                if event is None:
                    continue
                validate(event, schema)
            else:
                event = decode_event(msg.value, schema)
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


class BatchProcessor:
    def __init__(self, blueprint: IndexBlueprint, sink: BulkSink):
        self.blueprint = blueprint
        self.sink = sink
        self.max_document_bytes = settings.SEARCHSYNC["MAX_DOCUMENT_BYTES"]

    def _targets(self) -> list[Target]:
        rows = PhysicalIndex.objects.filter(blueprint_id=self.blueprint.pk, state__in=PhysicalIndex.WRITE_STATES)
        return [Target(name, mappings) for name, mappings in rows.order_by("number").values_list("name", "mappings")]

    def _reload_blueprint(self) -> None:
        # Schema, builder and delete mode may be changed by an operator while we run.
        self.blueprint = IndexBlueprint.objects.get(pk=self.blueprint.pk)

    def build_actions(self, winners, targets: list[Target], report: BatchReport, dead: list):
        actions: list[BulkAction] = []
        owners: dict[int, tuple[Incoming, Event]] = {}
        builder = get_builder(self.blueprint.document_builder)
        hard_delete = self.blueprint.delete_mode == DeleteMode.HARD
        for msg, event in winners:
            if event.is_delete and hard_delete:
                for target in targets:
                    action = BulkAction("delete", target.name, event.entity_id, event.version)
                    actions.append(action)
                    owners[id(action)] = (msg, event)
                continue
            try:
                document = tombstone_document(event) if event.is_delete else builder(event)
            except Exception as exc:  # a builder bug must not stall the partition
                dead.append((msg, "build_failed", f"{type(exc).__name__}: {exc}", _extra(event)))
                continue
            for target in targets:
                kept, dropped = drop_unmapped(document, target.mappings)
                for name, sample in dropped.items():
                    report.dropped_fields[(target.name, name)] += 1
                    self._samples[(target.name, name)] = sample
                size = len(json.dumps(kept, default=str).encode())
                if size > self.max_document_bytes:
                    dead.append((msg, "too_large", f"document is {size} bytes, limit {self.max_document_bytes}",
                                 _extra(event, target.name)))
                    continue
                action = BulkAction("index", target.name, event.entity_id, event.version, kept)
                actions.append(action)
                owners[id(action)] = (msg, event)
        return actions, owners

    def process(self, messages: list[Incoming]) -> BatchReport:
        report = BatchReport(messages=len(messages))
        self._samples: dict = {}
        self._reload_blueprint()
        targets = self._targets()
        dead: list = []

        valid, invalid = decode_all(messages, self.blueprint)
        for msg, exc in invalid:
            key = msg.key.decode("utf-8", errors="replace") if msg.key else ""
            dead.append((msg, exc.reason, exc.message, {"entity_id": key}))
        winners, report.superseded = newest_per_entity(valid)

        if not targets:
            raise NoWriteTarget(f"blueprint {self.blueprint.name} has no live or building index to write to")

        actions, owners = self.build_actions(winners, targets, report, dead)
        started = time.monotonic()
        result = self.sink.write(actions)
        if actions:
            stats.observe_bulk(self.blueprint.name, time.monotonic() - started, len(actions))
        report.indexed = len(result.indexed)
        report.stale = len(result.stale)
        report.retried = result.retried
        report.rejected_429 = result.rejected_429
        for failure in result.failed:
            msg, event = owners[id(failure.action)]
            dead.append((msg, failure.reason, failure.error, _extra(event, failure.action.index)))

        if dead:
            report.dead_lettered = dead_letters.record(self.blueprint, dead)
            for msg, reason, error, _ in dead:
                log.warning("dead-lettered %s[%s]@%s: %s %s", msg.topic, msg.partition, msg.offset, reason, error[:200])
        if report.dropped_fields:
            record_unmapped(report.dropped_fields, self._samples)

        lags = [(result.acked_at - owners[id(a)][1].timestamp.timestamp()) * 1000 for a in result.indexed]
        freshness.record(self.blueprint.name, "event", lags, at=result.acked_at)
        stats.incr(
            self.blueprint.name,
            indexed=report.indexed,
            stale=report.stale,
            retried=report.retried,
            dead_lettered=report.dead_lettered,
            superseded=report.superseded,
            dropped_fields=sum(report.dropped_fields.values()),
            batches=1,
        )
        return report


class NoWriteTarget(RuntimeError):
    pass


def _extra(event: Event, target_index: str = "") -> dict:
    return {"entity_id": event.entity_id, "event_id": event.event_id, "version": event.version, "target_index": target_index}


def record_unmapped(counts: Counter, samples: dict) -> None:
    """Upsert (index, field) → count += n, last_seen = now, sample."""
    with connection.cursor() as cur:
        for (index_name, name), n in counts.items():
            cur.execute(
                """
                INSERT INTO indexing_unmappedfield (index_name, field, count, first_seen, last_seen, sample, acknowledged)
                VALUES (%s, %s, %s, now(), now(), %s, false)
                ON CONFLICT (index_name, field) DO UPDATE
                SET count = indexing_unmappedfield.count + EXCLUDED.count,
                    last_seen = now(), sample = EXCLUDED.sample
                """,
                [index_name, name, n, json.dumps(samples.get((index_name, name)), default=str)],
            )

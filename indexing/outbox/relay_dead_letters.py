"""What the relay does with an outbox row it cannot publish: dead-letter it, so the rows behind go on.

A failure that belongs to the message itself and would repeat on every attempt
(too large for the producer or the topic, a record the broker rejects, a row
that cannot be encoded) is permanent: the row becomes a dead letter with the
bytes it would have sent and the reason, and leaves the unpublished set. Any
other error (broker down, timeout, leader election) is transient: the row
stays in the outbox and the relay tries it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from confluent_kafka import KafkaError
from django.utils import timezone

from indexing.models import DeadLetter, IndexBlueprint, OutboxEvent
from indexing.outbox.emit import as_event_json
from indexing.pipeline.dead_letters import store

Reason = DeadLetter.Reason

# Broker and librdkafka codes that are about the message itself, never about the connection.
PERMANENT_ERRORS = {
    KafkaError.MSG_SIZE_TOO_LARGE: Reason.TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE: Reason.TOO_LARGE,
    KafkaError.INVALID_RECORD: Reason.REJECTED,
    KafkaError.INVALID_TIMESTAMP: Reason.REJECTED,
    KafkaError._BAD_MSG: Reason.REJECTED,
    KafkaError._KEY_SERIALIZATION: Reason.UNSERIALISABLE,
    KafkaError._VALUE_SERIALIZATION: Reason.UNSERIALISABLE,
}


@dataclass
class Unpublishable:
    row: OutboxEvent
    topic: str
    reason: str
    error: str
    value: bytes | None = None


def permanent_reason(err: KafkaError) -> str | None:
    """The dead-letter reason of a per-message error, or None when it is worth retrying."""
    return PERMANENT_ERRORS.get(err.code())


def encode(row: OutboxEvent) -> tuple[bytes, bytes]:
    """Key and value of an outbox row; raises ValueError/TypeError for a row that cannot be an event."""
    value = json.dumps(as_event_json(row), separators=(",", ":"), allow_nan=False).encode()
    return row.aggregate_id.encode(), value


def _best_effort_bytes(row: OutboxEvent) -> bytes:
    """Something an operator can read when the row could not be encoded as an event."""
    try:
        return json.dumps(as_event_json(row), default=repr, separators=(",", ":")).encode("utf-8", "backslashreplace")
    except Exception:  # noqa: BLE001  (the dead letter matters more than a pretty body)
        return repr(row.payload).encode("utf-8", "backslashreplace")


def dead_letter(items: list[Unpublishable], using: str = "default") -> int:
    """Store the dead letters and take their rows out of the unpublished set; run in the relay's transaction.

    Dead letters live in searchsync's own database; the rows in ``using``'s outbox. For a source
    database the two commits are separate: the dead letters first, so a failure in between can
    only count a second attempt on one (the row is still unpublished and is dead-lettered again),
    never lose it."""
    if not items:
        return 0
    blueprints = {bp.aggregate_type: bp for bp in IndexBlueprint.objects.using("default").filter(
        aggregate_type__in={i.row.aggregate_type for i in items}, event_format="outbox").order_by("pk")}
    # One row per outbox row: dead-lettered again (see above), it counts another attempt.
    store([
        DeadLetter(
            source=DeadLetter.Source.OUTBOX,
            blueprint=blueprints.get(item.row.aggregate_type),
            topic=item.topic,
            key=item.row.aggregate_id.encode("utf-8", "backslashreplace"),
            raw_value=item.value if item.value is not None else _best_effort_bytes(item.row),
            reason=item.reason,
            error=item.error[:10_000],
            entity_id=item.row.aggregate_id[:255],
            event_id=str(item.row.event_id),
            version=item.row.version,
        )
        for item in items
    ])
    # The dead letter now owns the event (replay re-publishes its bytes), so the row counts as handed
    # over: marked like a published row, it no longer holds back the relay and is cleaned up in time.
    OutboxEvent.objects.using(using).filter(event_id__in=[i.row.event_id for i in items]).update(
        published_at=timezone.now())
    return len(items)

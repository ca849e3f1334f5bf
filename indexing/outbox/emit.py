"""Write events to the transactional outbox, inside the caller's transaction.

This is the only way application code publishes a change: the row commits or
rolls back with the entity change (no dual write), and the relay is woken
after the commit, never before and never inside it (``relay_wakeup``).
"""

from __future__ import annotations

from typing import Iterable

import orjson
from django.db import transaction

from indexing.pipeline import visibility
from indexing.blueprints.contracts import Event, event_type_for
from indexing.models import OutboxEvent
from indexing.outbox.wakeup import request_wakeup


class OutboxOutsideTransaction(RuntimeError):
    pass


def emit(*, aggregate_type: str, aggregate_id, version: int, payload: dict | None, tenant_id: str = "",
         delete: bool = False, using: str = "default") -> OutboxEvent:
    """Record one change event; must run inside ``transaction.atomic()``."""
    conn = transaction.get_connection(using)
    if not conn.in_atomic_block:
        raise OutboxOutsideTransaction("outbox.emit() must be called inside transaction.atomic() with the entity write")
    event = OutboxEvent.objects.using(using).create(
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        event_type=event_type_for(aggregate_type, delete),
        payload=payload or {},
        version=version,
        tenant_id=tenant_id,
    )
    notify(aggregate_type, using)
    visibility.emitted(aggregate_type, event.aggregate_id, version)  # read-your-writes, when the caller waits
    return event


COPY_COLUMNS = "aggregate_type, aggregate_id, event_type, payload, version, tenant_id"


def emit_many(aggregate_type: str, events: Iterable[Event], using: str = "default") -> int:
    """Record many upsert or delete events at once (fan-outs, bulk writes); inside ``transaction.atomic()``.

    One ``COPY`` instead of an ORM ``bulk_create``: a fan-out writes thousands of rows per second,
    and building a model instance and a bound parameter per column dominated its time. Event id and
    creation time come from the columns' database defaults, as for ``emit``."""
    conn = transaction.get_connection(using)
    if not conn.in_atomic_block:
        raise OutboxOutsideTransaction("outbox.emit_many() must be called inside transaction.atomic()")
    count = 0
    with conn.cursor() as cur:
        with cur.cursor.copy(f"COPY {OutboxEvent._meta.db_table} ({COPY_COLUMNS}) FROM STDIN") as copy:
            for event in events:
                copy.write_row((aggregate_type, event.entity_id, event_type_for(aggregate_type, event.is_delete),
                                orjson.dumps(event.payload or {}).decode(), event.version, event.tenant_id))
                count += 1
    if count:
        notify(aggregate_type, using)
    return count


def notify(aggregate_type: str, using: str = "default") -> None:
    """Wake the relay once the transaction has committed (coalesced: once per transaction)."""
    request_wakeup(using)


def as_event_json(row: OutboxEvent) -> dict:
    """The Kafka value of an outbox row, in the SearchIndexEvent contract."""
    event = {
        "event_id": str(row.event_id),
        "event_type": row.event_type,
        "entity_id": row.aggregate_id,
        "tenant_id": row.tenant_id,
        "version": row.version,
        "timestamp": row.created_at.isoformat(),
    }
    # A delete carries no payload: the schema's payload rules are for upserts.
    if row.payload or not row.event_type.endswith("_DELETE"):
        event["payload"] = row.payload
    return event


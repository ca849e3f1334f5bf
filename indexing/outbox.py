"""Write events to the transactional outbox, inside the caller's transaction.

This is the only way application code publishes a change: the row commits or
rolls back with the entity change (no dual write), and the relay is woken
after the commit, never before and never inside it (``relay_wakeup``).
"""

from __future__ import annotations

from django.db import transaction

from .contracts import event_type_for
from .models import OutboxEvent
from .relay_wakeup import request_wakeup

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
    return event


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


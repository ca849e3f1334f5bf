"""Produce raw bytes straight to a topic, as a misbehaving publisher would."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from indexing.core.producer import build_producer


def event(entity_id, version, *, delete=False, tenant="t1", aggregate="PRODUCT", **payload) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "event_type": f"{aggregate}_{'DELETE' if delete else 'UPSERT'}",
        "entity_id": str(entity_id),
        "tenant_id": tenant,
        "version": version,
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }
    if not delete:
        body["payload"] = {"title": f"Product {entity_id}", "price_minor": 100 * version, "available_qty": version,
                           **payload}
    return body


def produce(topic: str, messages: list[tuple[str | bytes | None, bytes | dict | str | None]], partition: int | None = None):
    producer = build_producer()
    errors = []
    for key, value in messages:
        if isinstance(value, dict):
            value = json.dumps(value).encode()
        elif isinstance(value, str):
            value = value.encode()
        kwargs = {"partition": partition} if partition is not None else {}
        producer.produce(topic, key=key.encode() if isinstance(key, str) else key, value=value,
                         on_delivery=lambda err, msg: err and errors.append(err), **kwargs)
    producer.flush(30)
    assert not errors, errors

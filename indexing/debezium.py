"""Debezium table change events → the pipeline's ``Event``.

A blueprint may consume a table's change stream directly instead of outbox
events. Debezium's envelope (``before``/``after``/``op``/``source``) is adapted
here: the commit's LSN becomes the external version (strictly increasing per
row, since commits are ordered in the WAL), ``op=d`` becomes a delete, and the
row's columns other than key, tenant, version and timestamp become the payload
— so the same schema check and document builder apply as for outbox events.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from .contracts import Event, InvalidEvent, event_type_for
from .models import DeadLetter
from .sources import Source

UPSERT_OPS = {"c", "u", "r"}  # create, update, snapshot read


def decode_table_change(raw: bytes | None, aggregate_type: str, source: Source) -> Event | None:
    """The event of one change, or None for a Kafka tombstone (nothing to index)."""
    if raw is None:
        return None  # the compaction tombstone Debezium may send after a delete
    try:
        change = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(DeadLetter.Reason.UNDECODABLE, f"not a UTF-8 JSON document: {exc}") from exc
    if isinstance(change, dict) and "payload" in change and "schema" in change:
        change = change["payload"]  # the converter was configured with schemas.enable=true
    if not isinstance(change, dict) or "op" not in change:
        raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, "not a Debezium change event (no 'op')")
    op = change["op"]
    row = change.get("after") if op in UPSERT_OPS else change.get("before")
    if op not in UPSERT_OPS and op != "d":
        raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, f"unknown op {op!r}")
    if not isinstance(row, dict):
        raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, f"op {op!r} without a {'after' if op in UPSERT_OPS else 'before'} row")
    meta = change.get("source") or {}
    lsn = meta.get("lsn")
    if not isinstance(lsn, int):
        raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, "source.lsn missing: it is the version of a table change")
    key = source.model._meta.pk.attname
    if row.get(key) is None:
        raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, f"the row has no {key}")
    ts_ms = meta.get("ts_ms") or change.get("ts_ms")
    timestamp = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc) if ts_ms else datetime.now(timezone.utc)
    skip = {key, source.tenant_field, "version", source.updated_field}
    return Event(
        event_id=str(uuid.uuid4()),
        event_type=event_type_for(aggregate_type, op == "d"),
        entity_id=str(row[key]),
        tenant_id=str(row.get(source.tenant_field) or ""),
        version=lsn,
        timestamp=timestamp,
        payload={} if op == "d" else {k: v for k, v in row.items() if k not in skip},
    )

"""Debezium table change events → the pipeline's ``Event``.

A blueprint may consume a table's change stream directly instead of outbox events. Debezium's
envelope (``before``/``after``/``op``/``source``) is adapted here: ``op=d`` becomes a delete, and
the row's columns other than key, tenant, versions and timestamp become the payload — so the same
schema check and document builder apply as for outbox events.

The version. When the source declares a ``stamp_field`` (a column the database sets from one
increasing sequence on every write, after the row lock), the version of an upsert is the row's
stamp: writes of one row hold its lock until commit, so its stamps grow in commit order, and a
row read by a backfill or reconciliation carries the very version its last change event carried.
Such a blueprint is backfilled, reconciled and cut over like an outbox one (``table_sources``). A
delete's version is the deleted row's stamp + 1 (the table's ``REPLICA IDENTITY FULL`` puts the
stamp in ``before``): above every version the row had, and the row can never be written again.

Without a stamp the commit's LSN is the version; a row read cannot reproduce a WAL position, so
such a blueprint is filled by the connector's snapshot only.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from indexing.blueprints.contracts import Event, InvalidEvent
from indexing.models import DeadLetter
from indexing.blueprints.sources import Source
from indexing.blueprints.table_sources import row_event

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
    delete = op == "d"
    if source.change_row is not None:
        row = source.change_row(row)
    meta = change.get("source") or {}
    if source.stamp_field:
        stamp = row.get(source.stamp_field)
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            where = "the deleted row (set the table's REPLICA IDENTITY FULL)" if delete else "the row"
            raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID,
                               f"{source.stamp_field} missing from {where}: it is the version of a table change")
        version = stamp + 1 if delete else stamp
    else:
        version = meta.get("lsn")
        if not isinstance(version, int):
            raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, "source.lsn missing: it is the version of a table change")
    key = source.model._meta.pk.attname
    if row.get(key) is None:
        raise InvalidEvent(DeadLetter.Reason.SCHEMA_INVALID, f"the row has no {key}")
    ts_ms = meta.get("ts_ms") or change.get("ts_ms")
    fallback = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc) if ts_ms else datetime.now(timezone.utc)
    return row_event(row, aggregate_type, source, version=version, delete=delete,
                     timestamp=_timestamp(row.get(source.updated_field)) or fallback)


def _timestamp(value) -> datetime | None:
    """A row's timestamp column as Debezium's JSON converter writes it: an ISO string for
    ``timestamptz`` (ZonedTimestamp), epoch milliseconds for ``timestamp`` (connect precision)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    return None

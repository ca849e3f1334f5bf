"""Re-index one document on an operator's request, the way reconciliation repairs drift.

The repair goes through the same path as every change, at the row's current version, so it can
never overwrite anything newer: the index copy already at that version answers 409 and stays, the
one behind takes it.

- A blueprint fed by the outbox gets an upsert event in the outbox, at the version the document
  is built with now (joined rows included), emitted in one transaction with the audit record.
- A blueprint fed by a table's change stream is not reached by the outbox, and touching the row
  would change the application's data: the document is written through the document writer at
  the row's stamp, as a backfill writes it.
- A row that no longer exists while an index still holds a live document gets a delete one
  version above the highest copy, as reconciliation deletes an orphan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

import audit
from indexing.blueprints.contracts import Event, event_type_for
from indexing.blueprints.table_sources import blueprint_source
from indexing.engines import get_engine
from indexing.models import IndexBlueprint
from indexing.observability.inspector import audit_target
from indexing.outbox.emit import emit
from indexing.pipeline.bulk_sink import BulkSink
from indexing.pipeline.writer import write_documents, write_targets


class CannotReindex(Exception):
    """Nothing to re-index, or no way to: the message says which."""


@dataclass(frozen=True)
class Reindexed:
    event: str  # upsert | delete
    version: int
    via: str  # outbox | document writer
    event_id: str


def reindex_document(blueprint: IndexBlueprint, entity_id: str, user) -> Reindexed:
    try:
        source = blueprint_source(blueprint)
    except LookupError as exc:
        raise CannotReindex(str(exc)) from None
    with transaction.atomic(using=source.database):
        events = source.events_for_ids([entity_id], using=source.database)
        event = events[0] if events else _orphan_delete(blueprint, entity_id)
        if blueprint.fed_by_table_changes:
            write_documents(blueprint, write_targets(blueprint), [(None, event)], BulkSink.from_settings(get_engine()))
            done = Reindexed("delete" if event.is_delete else "upsert", event.version, "document writer", event.event_id)
        else:
            row = emit(aggregate_type=blueprint.aggregate_type, aggregate_id=event.entity_id, version=event.version,
                       payload=event.payload, tenant_id=event.tenant_id, delete=event.is_delete, using=source.database)
            done = Reindexed("delete" if event.is_delete else "upsert", event.version, "outbox", str(row.event_id))
        audit.record(user, "document.reindex", audit_target(blueprint, entity_id),
                     details={"event": done.event, "version": done.version, "via": done.via, "event_id": done.event_id})
    return done


def _orphan_delete(blueprint: IndexBlueprint, entity_id: str) -> Event:
    engine = get_engine()
    held = []
    for target in write_targets(blueprint):
        doc = engine.get(target.name, entity_id)
        if doc is not None and not (doc.get("_source") or {}).get("deleted"):
            held.append(doc)
    if not held:
        raise CannotReindex("the row does not exist and no index holds a live document: nothing to re-index")
    top = max(held, key=lambda d: d["_version"])
    return Event(event_id=str(uuid.uuid4()), event_type=event_type_for(blueprint.aggregate_type, True),
                 entity_id=entity_id, tenant_id=str((top.get("_source") or {}).get("tenant_id") or ""),
                 version=top["_version"] + 1, timestamp=timezone.now(), payload={})

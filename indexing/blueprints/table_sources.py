"""Rows of a table read as its change events decode, for blueprints fed by table CDC.

A blueprint fed by Debezium's table change events (``event_format=debezium_table``) builds each
document from its row alone: the row's columns are the payload, and its version is the row's
change stamp when the source declares one (``Source.stamp_field``, see ``debezium.py``). Backfills,
reconciliation, cutover guards and revision samples read rows through ``blueprint_source``, which
gives such a blueprint the events its change stream would carry for the same rows — same payload,
same version — so a backfilled document equals a streamed one and versioning arbitrates between
them as between any two events.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from indexing.blueprints.contracts import Event, event_type_for
from indexing.models import EventFormat, IndexBlueprint
from indexing.blueprints.sources import Source, get_source


def blueprint_source(blueprint: IndexBlueprint) -> Source:
    """The source as ``blueprint`` reads it: the registered one, its declared relation, or for table
    CDC its rows alone."""
    if blueprint.relation:
        # A declared relation's row read is already its change event: version column, every column.
        from indexing.blueprints.relations import declared_source

        return declared_source(blueprint)
    source = get_source(blueprint.source_model)
    if blueprint.event_format == EventFormat.DEBEZIUM_TABLE:
        return row_source(source, blueprint.aggregate_type)
    return source


def versions_are_lsns(blueprint: IndexBlueprint) -> bool:
    """Fed by table changes of a source without a stamp column: versions only the WAL can give."""
    if blueprint.event_format != EventFormat.DEBEZIUM_TABLE or blueprint.relation:
        return False  # a declared table's changes carry its version column
    try:
        return not get_source(blueprint.source_model).stamp_field
    except LookupError:
        return True


def row_event(columns: dict, aggregate_type: str, source: Source, *, version: int, timestamp: datetime,
              delete: bool = False) -> Event:
    """The event of a row's columns: what a change event carries, and what a backfill reads."""
    key = source.model._meta.pk.attname
    skip = {key, source.tenant_field, "version", source.updated_field, source.stamp_field}
    return Event(
        event_id=str(uuid.uuid4()),
        event_type=event_type_for(aggregate_type, delete),
        entity_id=str(columns[key]),
        tenant_id=str(columns.get(source.tenant_field) or ""),
        version=version,
        timestamp=timestamp,
        payload={} if delete else {k: _plain(v) for k, v in columns.items() if k not in skip},
    )


def change_source(blueprint: IndexBlueprint) -> Source:
    """The source a blueprint fed by table changes decodes them with: its key, version and columns."""
    if blueprint.relation:
        from indexing.blueprints.relations import declared_source

        return declared_source(blueprint)
    return get_source(blueprint.source_model)


def row_source(source: Source, aggregate_type: str) -> Source:
    """``source`` read as its table's change events decode: the row's own columns, versioned by its
    stamp. Joined rows play no part (a table's change stream does not see them)."""
    if not source.stamp_field:
        raise LookupError(f"{source.name} has no stamp column: its table changes are versioned by WAL "
                          "position, which a row read cannot give; fill such an index with the connector's snapshot")

    def to_event(row) -> Event:
        columns = {f.attname: getattr(row, f.attname) for f in source.model._meta.concrete_fields}
        return row_event(columns, aggregate_type, source, version=columns[source.stamp_field],
                         timestamp=columns.get(source.updated_field) or datetime.now(timezone.utc))

    return replace(source, to_event=to_event, to_events=None, ids_to_events=None, joined_fields=(), depends_on=(),
                   version_field=source.stamp_field)


def _plain(value):
    # decimal.handling.mode=double: a numeric column arrives as a float in change events.
    return float(value) if isinstance(value, Decimal) else value

"""Turn a validated event into the document the index stores.

A blueprint names its builder; builders are plain functions registered here
by the app that owns the data (the catalog registers "products"). Whatever a
builder returns is then cut down to the fields the mapping knows, because the
mapping is ``dynamic: strict``: an unknown field would make the whole document
fail. Dropped fields are reported so an operator can extend the mapping.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Callable

from indexing.blueprints.contracts import Event
from indexing.blueprints.relations import declared_builder

DocumentBuilder = Callable[[Event], dict]

_BUILDERS: dict[str, DocumentBuilder] = {}


class UnknownBuilder(LookupError):
    pass


def register_builder(name: str):
    def decorator(fn: DocumentBuilder) -> DocumentBuilder:
        _BUILDERS[name] = fn
        return fn

    return decorator


def unregister_builder(name: str) -> None:
    """Forget a builder (an app unloading it, or a test cleaning up after itself)."""
    _BUILDERS.pop(name, None)


def get_builder(name: str) -> DocumentBuilder:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise UnknownBuilder(f"no document builder registered as {name!r}; known: {sorted(_BUILDERS)}") from None


def builder_for(blueprint) -> DocumentBuilder:
    """The builder of ``blueprint``: its declared relation's (the row is the document), else the
    one registered under its ``document_builder`` name."""
    if getattr(blueprint, "relation", None):
        return declared_builder(blueprint)
    return get_builder(blueprint.document_builder)


def registered_builders() -> list[str]:
    return sorted(_BUILDERS)


def tombstone_document(event: Event) -> dict:
    """A logical delete: kept with its version so a late stale upsert loses, hidden by the read alias."""
    return {
        "id": event.entity_id,
        "tenant_id": event.tenant_id,
        "version": event.version,
        "updated_at": event.timestamp.isoformat(),
        "deleted": True,
    }


def drop_unmapped(document: dict, mappings: dict, prefix: str = "") -> tuple[dict, dict[str, object]]:
    """Keep only mapped fields; return the kept document and {dotted field: sample value} of the dropped."""
    properties = mappings.get("properties", {})
    kept: dict = {}
    dropped: dict[str, object] = {}
    for key, value in document.items():
        spec = properties.get(key)
        if spec is None:
            dropped[prefix + key] = value
            continue
        # Runs for every field of every document: the dotted path is built only where it is needed.
        if "properties" in spec and isinstance(value, (dict, list)):
            inner_prefix = f"{prefix}{key}."
            if isinstance(value, dict):
                kept[key], inner_dropped = drop_unmapped(value, spec, prefix=inner_prefix)
                dropped.update(inner_dropped)
                continue
            items = []
            for item in value:
                if isinstance(item, dict):
                    inner, inner_dropped = drop_unmapped(item, spec, prefix=inner_prefix)
                    items.append(inner)
                    dropped.update(inner_dropped)
                else:
                    items.append(item)
            kept[key] = items
        else:
            kept[key] = value
    return kept, dropped


class MappedFields:
    """``drop_unmapped`` for one mapping, made once per batch: a document whose fields are all mapped,
    none of them an object with properties of its own (the usual document), is kept as it is after
    one set test, not copied field by field. Callers never change a kept document."""

    def __init__(self, mappings: dict):
        self.mappings = mappings
        self.flat = frozenset(key for key, spec in mappings.get("properties", {}).items() if "properties" not in spec)

    def keep(self, document: dict) -> tuple[dict, dict[str, object]]:
        if document.keys() <= self.flat:
            return document, {}
        return drop_unmapped(document, self.mappings)


def record_unmapped(counts: Counter, samples: dict) -> None:
    """Upsert (index, field) → count += n, last_seen = now, sample: what the console lists under
    *Unmapped fields* until an operator extends the mapping or acknowledges it."""
    from django.db import connection

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

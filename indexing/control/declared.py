"""Blueprints declared in files: propose one from a folder, enable it.

``propose`` checks the folder against the relation in its source database (it exists, the key,
version, tenant and timestamp columns are there, the version is an integer, every column has a
field in the strict mapping), validates the definition on a scratch index with sample rows, and
records it as an immutable revision, as for any blueprint. A new declared blueprint starts
disabled; ``enable`` creates its index, aliases and topic and turns it on, and running ``--cdc``
workers start its consumer without a restart.
"""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from indexing.blueprints import relation_folder, relations
from indexing.blueprints.indices import ensure_live_index
from indexing.control import revisions
from indexing.outbox import joined_changes
from indexing.core.topics import ensure_topic
from indexing.engines import SearchEngine, get_engine
from indexing.conf import searchsync_settings
from indexing.models import EventFormat, IndexBlueprint


def propose(name: str, directory: str | Path, *, reason: str, by: str | None = None,
            engine: SearchEngine | None = None):
    """Validate the folder and record it as ``name``'s next revision; creates the blueprint (disabled)
    the first time. Raises ``relations.DeclarationError`` or ``revisions.RevisionRejected`` with the cause."""
    directory = Path(directory).resolve()
    aggregate_type, definition = relation_folder.load_folder(directory)
    spec = relations.RelationSpec.of(definition["relation"])
    relations.check(spec, definition["mappings"])
    existing = IndexBlueprint.objects.filter(name=name).first()
    if existing is not None and not existing.relation:
        raise relations.DeclarationError(f"{name!r} is a blueprint registered by code, not declared in files")
    if existing is not None and existing.aggregate_type != aggregate_type:
        raise relations.DeclarationError(f"{name!r} consumes {existing.aggregate_type!r} events; its aggregate type "
                                         "cannot change (its topic and documents hang on it): declare a new blueprint")
    if existing is not None and relations.RelationSpec.of(existing.relation).feed != spec.feed:
        raise relations.DeclarationError(f"{name!r} is fed by {relations.RelationSpec.of(existing.relation).feed}; its "
                                         "feed cannot change (its topic and versions hang on it): declare a new blueprint")
    with transaction.atomic():
        blueprint = existing or IndexBlueprint.objects.create(
            name=name, aggregate_type=aggregate_type, read_alias=f"{name}_current", write_alias=f"{name}_write",
            source_model=f"relation:{name}", enabled=False, declared_from=str(directory), revision=0,
            **feed_fields(aggregate_type, spec), **revisions.row_fields(definition))
        revision = revisions.propose(blueprint, definition, by=by, reason=reason, engine=engine)
        # The joined tables' triggers (idempotent): their changes are recorded from now on, and
        # fan out once a revision depending on them serves.
        if spec.depends_on:
            joined_changes.install(spec)
        if existing is None:
            revisions.apply(blueprint, revision)
        elif existing.declared_from != str(directory):
            IndexBlueprint.objects.filter(pk=blueprint.pk).update(declared_from=str(directory))
    return blueprint, revision


def feed_fields(aggregate_type: str, spec: relations.RelationSpec) -> dict:
    """The IndexBlueprint fields of a feed: table changes arrive on the table's Debezium topic,
    ``<prefix><aggregate type>.cdc.<schema>.<table>`` (the connector's topic prefix, then the table)."""
    if spec.feed != relations.TABLE_CHANGES:
        return {"event_format": EventFormat.OUTBOX, "source_topic": ""}
    prefix = f"{searchsync_settings.TOPIC_PREFIX}{aggregate_type}.cdc"
    return {"event_format": EventFormat.DEBEZIUM_TABLE,
            "source_topic": f"{prefix}.{relations.qualified_name(spec)}"}


def enable(blueprint: IndexBlueprint, engine: SearchEngine | None = None) -> IndexBlueprint:
    """Create what a blueprint needs to run (live index, aliases, topic) and turn it on. Idempotent."""
    ensure_live_index(blueprint, engine or get_engine())
    ensure_topic(blueprint.topic)
    IndexBlueprint.objects.filter(pk=blueprint.pk).update(enabled=True)
    blueprint.enabled = True
    return blueprint

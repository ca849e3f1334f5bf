"""The public registration API: how an application plugs its data into searchsync.

The app that owns a model keeps the blueprint's definition as files next to its
code (version-controlled) and registers it once, from its ``AppConfig.ready()``::

    register_blueprint(
        "brands", files_dir=Path(__file__).parent / "search",
        aggregate_type="brand", source=Source("catalog.Brand", Brand, brand_event), builder=build_brand,
    )

``files_dir`` holds ``<name>_mapping.json`` (``settings`` + ``mappings``),
``<name>_event.schema.json`` (the event's JSON Schema) and ``<name>_blueprint.json``
(``document_builder``, ``delete_mode``, ``golden_queries``, and optionally ``sidecar``:
high-velocity fields routed to a sidecar index, see ``indexing/blueprints/sidecar.py``). ``manage.py bootstrap``
creates the registered blueprints; afterwards a definition changes only through
``manage.py blueprints propose`` (a new, validated, immutable revision).
The platform never imports the registering app: it only knows what was registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from indexing.blueprints.documents import DocumentBuilder, register_builder
from indexing.blueprints.sources import Source, register_source


@dataclass(frozen=True)
class Registration:
    name: str
    files_dir: Path
    aggregate_type: str
    source_model: str
    canary_payload: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # other IndexBlueprint fields (freshness_threshold_ms, ...)

    def file(self, kind: str) -> Path:
        return self.files_dir / {"mapping": f"{self.name}_mapping.json", "schema": f"{self.name}_event.schema.json",
                                 "blueprint": f"{self.name}_blueprint.json"}[kind]

    def definition(self) -> dict:
        """The definition as the files say it now (what ``propose`` would record)."""
        index = json.loads(self.file("mapping").read_text())
        extra = json.loads(self.file("blueprint").read_text()) if self.file("blueprint").exists() else {}
        return {
            "settings": index.get("settings", {}),
            "mappings": index["mappings"],
            "event_schema": json.loads(self.file("schema").read_text()),
            "document_builder": extra.get("document_builder", self.name),
            "delete_mode": extra.get("delete_mode", "tombstone"),
            "golden_queries": extra.get("golden_queries", []),
            "sidecar": extra.get("sidecar", {}),
        }


_REGISTRY: dict[str, Registration] = {}


def register_blueprint(name: str, files_dir: str | Path, *, aggregate_type: str, source: Source | None = None,
                       builder: DocumentBuilder | None = None, canary_payload: dict | None = None,
                       depends_on=(), **options) -> Registration:
    """Register a blueprint definition; ``source`` and ``builder`` are registered with it when given.

    ``depends_on`` lists the joined rows documents are built from (``indexing.blueprints.dependencies``):
    a change to one fans out to every dependent document."""
    if depends_on:
        if source is None:
            raise ValueError("depends_on needs the source whose rows reference the joined models")
        from indexing.blueprints.dependencies import watch

        source = replace(source, depends_on=tuple(depends_on))
        watch(name, depends_on)
    if source is not None:
        register_source(source)
    if builder is not None:
        register_builder(name)(builder)
    registration = Registration(name=name, files_dir=Path(files_dir), aggregate_type=aggregate_type,
                                source_model=source.name if source else options.pop("source_model"),
                                canary_payload=canary_payload or {}, options=options)
    _REGISTRY[name] = registration
    return registration


def get_registration(name: str) -> Registration:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no blueprint registered as {name!r}; known: {sorted(_REGISTRY)}") from None


def registrations() -> list[Registration]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def blueprint_fields(registration: Registration, name: str | None = None, **overrides) -> dict:
    """IndexBlueprint fields for a registration; ``name`` lets tests run a copy under another name."""
    name = name or registration.name
    fields = dict(
        name=name,
        registered_as=registration.name,
        aggregate_type=registration.aggregate_type,
        read_alias=f"{name}_current",
        write_alias=f"{name}_write",
        source_model=registration.source_model,
        canary_payload=registration.canary_payload,
        **registration.options,
    )
    fields.update(overrides)
    return fields


def ensure_blueprint(registered: str, *, name: str | None = None, by: str = "bootstrap", validate: bool = False,
                     **overrides):
    """Create the blueprint row and its first revision from the files, or update an existing
    row's code-level fields (source, canary payload); its definition changes by revisions only.

    Overrides of definition keys (settings, mappings, delete_mode...) go into the first revision."""
    from indexing.control import revisions
    from indexing.models import BlueprintRevision, IndexBlueprint

    registration = get_registration(registered)
    definition = registration.definition()
    for key in BlueprintRevision.DEFINITION_KEYS:
        if key in overrides:
            definition[key] = overrides.pop(key)
    fields = blueprint_fields(registration, name, **overrides)
    blueprint, created = IndexBlueprint.objects.get_or_create(
        name=fields.pop("name"), defaults={**fields, **revisions.row_fields(definition), "revision": 1})
    if not created:
        # What the registering code decides (not the definition, which changes by revisions only)
        # follows the code. Names, aliases and the aggregate type stay: topics and aliases hang on them.
        follows_code = {key: fields[key] for key in ("registered_as", "source_model", "canary_payload",
                                                     *registration.options) if key in fields}
        changed = {key: value for key, value in follows_code.items() if getattr(blueprint, key) != value}
        if changed:
            IndexBlueprint.objects.filter(pk=blueprint.pk).update(**changed)
            for key, value in changed.items():
                setattr(blueprint, key, value)
    if not blueprint.revisions.exists():
        reason = "first revision, from the registered files"
        if validate:
            revision = revisions.propose(blueprint, definition, by=by, reason=reason)
        else:
            revision = revisions.record(blueprint, definition, by=by, reason=reason)
        revisions.apply(blueprint, revision)
    return blueprint


# -- any Django model as a source, in one call ------------------------------------------


def default_builder(event) -> dict:
    """The payload as the document, with the fields every blueprint's documents carry."""
    return {**event.payload, "id": event.entity_id, "tenant_id": event.tenant_id, "version": event.version,
            "updated_at": event.timestamp.isoformat(), "deleted": False}


@dataclass(frozen=True)
class ModelRegistration:
    aggregate_type: str
    payload: Callable
    tenant_field: str


_MODELS: dict[type, ModelRegistration] = {}


def register_model(name: str, model, *, files_dir: str | Path, aggregate_type: str, payload: Callable,
                   builder: DocumentBuilder | None = None, tenant_field: str = "tenant_id",
                   updated_field: str = "updated_at", canary_payload: dict | None = None, **options) -> Registration:
    """Make ``model`` a searchable source: backfills and reconciliation read it, ``emit_change``
    publishes its changes, and the blueprint ``name`` is defined by the files in ``files_dir``.

    The model needs a ``version`` (bigint, bumped by every write: the index's external version),
    a tenant field and an ``updated_at`` timestamp. ``payload(row)`` is the event payload."""
    from indexing.blueprints.contracts import Event, event_type_for

    def to_event(row) -> Event:
        return Event(event_id="", event_type=event_type_for(aggregate_type, False), entity_id=str(row.pk),
                     tenant_id=getattr(row, tenant_field), version=row.version, timestamp=getattr(row, updated_field),
                     payload=payload(row))

    _MODELS[model] = ModelRegistration(aggregate_type, payload, tenant_field)
    source = Source(model._meta.label, model, to_event, tenant_field=tenant_field, updated_field=updated_field)
    return register_blueprint(name, files_dir, aggregate_type=aggregate_type, source=source,
                              builder=builder or default_builder, canary_payload=canary_payload, **options)


def emit_change(instance, *, delete: bool = False, using: str = "default"):
    """Record the change of a registered model's row in the outbox. Call it from the model's
    service functions inside the transaction that writes the row, after bumping ``version``."""
    from indexing.outbox.emit import emit

    registration = _MODELS[type(instance)]
    return emit(aggregate_type=registration.aggregate_type, aggregate_id=instance.pk, version=instance.version,
                payload=None if delete else registration.payload(instance),
                tenant_id=getattr(instance, registration.tenant_field), delete=delete, using=using)

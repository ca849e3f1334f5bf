"""Joined rows a blueprint's documents are built from, and the fan-out a change to one implies.

Declared once, where the blueprint is registered::

    register_blueprint("products", ..., depends_on=[
        Dependency(model=Brand, via="brand_id", fields=("name",)),
        Dependency(model=Category, via="category_id", fields=("name", "parent"), subtree="parent_id"),
    ])

From then on every saved change of a ``Brand``'s ``name`` (or a category's name or parent) starts,
in the same transaction, a fan-out: a backfill (purpose ``fanout``) whose chunks re-emit, through
the outbox, an upsert of every document that depends on the row — throttled, resumable and shown
like any backfill. The documents' versions must grow with the joined rows (the registering app
stamps them), so a fan-out's events beat everything built before the change.

A write narrows what it changed with ``save(update_fields=[...])``; a save without it counts as a
change of every field. Creations fan out nothing: no document can depend on a new row yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.db.models.signals import post_save
from django.dispatch import Signal

# Sent inside the writing transaction (kwargs: blueprint, selection); backfills schedules the fan-out.
dependency_changed = Signal()

MAX_DEPTH = 64


@dataclass(frozen=True)
class Dependency:
    model: type
    via: str  # the source model's column holding the joined row's id
    fields: tuple[str, ...] | None = None  # the joined row's fields documents show; None = all
    subtree: str | None = None  # parent column when the joined model is a tree: descendants count too

    @property
    def label(self) -> str:
        return self.model._meta.label

    def affected_ids(self, pk, using: str = "default") -> list[int]:
        """The joined rows whose dependents a change of ``pk`` touches: itself, and its subtree."""
        if not self.subtree:
            return [pk]
        table = connections[using].ops.quote_name(self.model._meta.db_table)
        parent = connections[using].ops.quote_name(self.model._meta.get_field(self.subtree).column)
        with connections[using].cursor() as cur:
            cur.execute(f"""
                WITH RECURSIVE tree AS (
                    SELECT id, 0 AS depth FROM {table} WHERE id = %s
                    UNION ALL
                    SELECT c.id, tree.depth + 1 FROM {table} c JOIN tree ON c.{parent} = tree.id
                     WHERE tree.depth < {MAX_DEPTH}
                ) SELECT DISTINCT id FROM tree""", [pk])
            return [row[0] for row in cur.fetchall()]

    def touches(self, update_fields) -> bool:
        if update_fields is None or self.fields is None:
            return True
        names = set(update_fields)
        return any(f in names or f"{f}_id" in names for f in self.fields)


def selection_for(dependency: Dependency, pk) -> dict:
    return {"kind": "dependency", "on": dependency.label, "id": pk}


def rows_depending(source, qs, selection: dict, using: str = "default"):
    """Narrow ``qs`` (rows of ``source``) to those depending on the selection's joined row."""
    dependency = source_dependency(source, selection["on"])
    return qs.filter(**{f"{dependency.via}__in": dependency.affected_ids(selection["id"], using)})


def source_dependency(source, label: str) -> Dependency:
    for dependency in source.depends_on:
        if dependency.label == label:
            return dependency
    raise LookupError(f"{source.name} does not depend on {label}")


_WATCHED: dict[type, list[tuple[str, Dependency]]] = {}


def watch(registration_name: str, dependencies) -> None:
    """Connect the fan-out to saves of each joined model (once per model)."""
    for dependency in dependencies:
        entries = _WATCHED.setdefault(dependency.model, [])
        entries[:] = [e for e in entries if e[0] != registration_name]
        entries.append((registration_name, dependency))
        post_save.connect(_changed, sender=dependency.model, weak=False,
                          dispatch_uid=f"searchsync-dependency-{dependency.label}")


def _changed(sender, instance, created, update_fields=None, using="default", **kwargs):
    if created:
        return
    from .models import EventFormat, IndexBlueprint

    for registration_name, dependency in _WATCHED.get(sender, []):
        if not dependency.touches(update_fields):
            continue
        # One fan-out per topic: blueprints sharing an aggregate type read the same events.
        seen = set()
        # A blueprint fed by the table's own change stream builds documents from the row alone:
        # joined rows are not part of them, and outbox events would not reach it anyway.
        for blueprint in IndexBlueprint.objects.using(using).filter(registered_as=registration_name, enabled=True,
                                                                    event_format=EventFormat.OUTBOX):
            if blueprint.aggregate_type in seen or blueprint.live_index() is None:
                continue
            seen.add(blueprint.aggregate_type)
            dependency_changed.send(sender=Dependency, blueprint=blueprint,
                                    selection=selection_for(dependency, instance.pk))

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

``QuerySet.update()`` sends no ``post_save``: a joined model's manager uses ``DependencyQuerySet``,
whose ``update()`` locks the rows it changes and starts one fan-out for all of them, in the
update's transaction — a bulk rename is a supported write like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections, models, transaction
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

    def affected_ids(self, pks, using: str = "default") -> list[int]:
        """The joined rows whose dependents a change of ``pks`` (one id or many) touches: themselves,
        and their subtrees."""
        pks = list(pks) if isinstance(pks, (list, tuple, set)) else [pks]
        if not self.subtree:
            return pks
        table = connections[using].ops.quote_name(self.model._meta.db_table)
        parent = connections[using].ops.quote_name(self.model._meta.get_field(self.subtree).column)
        with connections[using].cursor() as cur:
            cur.execute(f"""
                WITH RECURSIVE tree AS (
                    SELECT id, 0 AS depth FROM {table} WHERE id = ANY(%s)
                    UNION ALL
                    SELECT c.id, tree.depth + 1 FROM {table} c JOIN tree ON c.{parent} = tree.id
                     WHERE tree.depth < {MAX_DEPTH}
                ) SELECT DISTINCT id FROM tree""", [pks])
            return [row[0] for row in cur.fetchall()]

    def touches(self, update_fields) -> bool:
        if update_fields is None or self.fields is None:
            return True
        names = set(update_fields)
        return any(f in names or f"{f}_id" in names for f in self.fields)


def selection_for(dependency: Dependency, pks) -> dict:
    """One changed row (``id``) or several changed together (``ids``)."""
    if isinstance(pks, (list, tuple)):
        return {"kind": "dependency", "on": dependency.label, "ids": list(pks)}
    return {"kind": "dependency", "on": dependency.label, "id": pks}


def rows_depending(source, qs, selection: dict, using: str = "default"):
    """Narrow ``qs`` (rows of ``source``) to those depending on the selection's joined row."""
    dependency = source_dependency(source, selection["on"])
    changed = selection["ids"] if "ids" in selection else [selection["id"]]
    return qs.filter(**{f"{dependency.via}__in": dependency.affected_ids(changed, using)})


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
    changed(sender, instance.pk, update_fields, using)


def changed(model, pks, update_fields=None, using: str = "default") -> None:
    """Announce a change of the rows ``pks`` (one id, or a list changed together) of a joined model."""
    from indexing.models import EventFormat, IndexBlueprint

    for registration_name, dependency in _WATCHED.get(model, []):
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
                                    selection=selection_for(dependency, pks))


class DependencyQuerySet(models.QuerySet):
    """The queryset of a model documents join: ``update()`` fans out like a save does.

    The rows are locked (in id order, so two bulk updates cannot deadlock) before they change, and
    the fan-out covers exactly the locked rows: one backfill for all of them, in the transaction of
    the update. ``lock_writes`` runs first: the app's own ordering of writes to joined rows."""

    def lock_writes(self) -> None:
        """Override to take the app's write lock (the one its single-row writes take)."""

    def check_update(self, pks: list, changes: dict) -> None:
        """Override to refuse a bulk change the app's single-row writes would refuse (raise)."""

    def update(self, **kwargs):
        if not any(dependency.touches(kwargs) for _, dependency in _WATCHED.get(self.model, [])):
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            self.lock_writes()
            pks = list(self.select_for_update().order_by("pk").values_list("pk", flat=True))
            if not pks:
                return 0
            self.check_update(pks, kwargs)
            count = models.QuerySet.update(self.model._base_manager.using(self.db).filter(pk__in=pks), **kwargs)
            changed(self.model, pks, list(kwargs), self.db)
            return count

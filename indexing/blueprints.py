"""Physical indices and aliases of a blueprint.

Every physical index is ``<name>_v<N>``. The read alias carries a filter that
hides logical tombstones and freshness canaries, so search clients never see
either; the write alias points at the live index for tools that want one name.
"""

from __future__ import annotations

import copy

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .engines import SearchEngine, get_engine
from .models import BlueprintRevision, DeleteMode, IndexBlueprint, PhysicalIndex

CANARY_ENTITY_ID = "__canary__"
CANARY_TENANT_ID = "__canary__"


def serving_settings(blueprint: IndexBlueprint) -> dict:
    settings = copy.deepcopy(blueprint.settings)
    if blueprint.delete_mode == DeleteMode.HARD:
        # A versioned delete's tombstone lives gc_deletes long; a stale upsert
        # arriving after that would resurrect the document, so keep it longer
        # than any replay or retry can be late.
        settings["gc_deletes"] = blueprint.hard_delete_gc_deletes
    replicas = django_settings.SEARCHSYNC.get("INDEX_REPLICAS")
    if replicas is not None:
        # the cluster's size, not the blueprint, decides how many copies it can hold
        settings["number_of_replicas"] = replicas
    return settings


def index_serving_settings(index: PhysicalIndex) -> dict:
    """The settings an index serves with: those of the revision it was built from."""
    blueprint = index.blueprint
    if index.revision_id is not None:
        blueprint = copy.copy(blueprint)
        blueprint.settings = index.revision.definition["settings"]
        blueprint.delete_mode = index.revision.definition["delete_mode"]
    return serving_settings(blueprint)


def read_alias_filter(blueprint: IndexBlueprint) -> dict:
    must_not = [{"term": {"tenant_id": CANARY_TENANT_ID}}]
    if blueprint.delete_mode == DeleteMode.TOMBSTONE:
        must_not.append({"term": {"deleted": True}})
    return {"bool": {"must_not": must_not}}


def alias_add_actions(blueprint: IndexBlueprint, index_name: str) -> list[dict]:
    return [
        {"add": {"index": index_name, "alias": blueprint.read_alias, "filter": read_alias_filter(blueprint)}},
        {"add": {"index": index_name, "alias": blueprint.write_alias, "is_write_index": True}},
    ]


def create_physical_index(blueprint: IndexBlueprint, *, state=PhysicalIndex.State.BUILDING,
                          extra_settings: dict | None = None, engine: SearchEngine | None = None,
                          revision: BlueprintRevision | None = None) -> PhysicalIndex:
    """Create the next ``<name>_v<N>`` from ``revision``, by default the one the blueprint serves."""
    engine = engine or get_engine()
    with transaction.atomic():
        locked = IndexBlueprint.objects.select_for_update().get(pk=blueprint.pk)
        number = (locked.indices.aggregate(n=Max("number"))["n"] or 0) + 1
        # An index of that name this database does not know (another installation on the same
        # cluster, a restored database) is someone's data: never delete it, take the next number.
        while engine.index_exists(locked.physical_name(number)):
            number += 1
        if revision is None:
            revision = locked.revisions.filter(number=locked.revision).first()
        else:
            # The index is built as the revision says; the row keeps mirroring the live index.
            locked = copy.copy(locked)
            locked.settings, locked.mappings = revision.definition["settings"], revision.definition["mappings"]
            locked.delete_mode = revision.definition["delete_mode"]
        settings = serving_settings(locked)
        settings.update(extra_settings or {})
        index = PhysicalIndex.objects.create(
            blueprint=blueprint,
            number=number,
            name=locked.physical_name(number),
            state=state,
            blueprint_revision=revision.number if revision else locked.revision,
            revision=revision,
            settings=settings,
            mappings=copy.deepcopy(locked.mappings),
        )
    engine.create_index(index.name, index.settings, index.mappings)
    return index


def ensure_live_index(blueprint: IndexBlueprint, engine: SearchEngine | None = None) -> PhysicalIndex:
    """Make sure the blueprint has a live index behind its aliases (idempotent)."""
    engine = engine or get_engine()
    live = blueprint.live_index()
    if live is None:
        live = create_physical_index(blueprint, state=PhysicalIndex.State.BUILDING, engine=engine)
        engine.update_aliases(alias_add_actions(blueprint, live.name))
        PhysicalIndex.objects.filter(pk=live.pk).update(state=PhysicalIndex.State.LIVE, live_at=timezone.now())
        live.refresh_from_db()
        return live
    if not engine.index_exists(live.name):
        engine.create_index(live.name, live.settings, live.mappings)
    if live.name not in engine.get_alias(blueprint.read_alias):
        engine.update_aliases(alias_add_actions(blueprint, live.name))
    return live


def write_target_names(blueprint: IndexBlueprint) -> list[str]:
    return list(blueprint.write_targets().values_list("name", flat=True))

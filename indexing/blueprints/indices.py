"""Physical indices and aliases of a blueprint.

Every physical index is ``<name>_v<N>``. The read alias carries a filter that
hides logical tombstones and freshness canaries, so search clients never see
either; the write alias points at the live index for tools that want one name.
"""

from __future__ import annotations

import copy

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from indexing.blueprints import sidecar
from indexing.engines import SearchEngine, get_engine
from indexing.models import BlueprintRevision, DeleteMode, IndexBlueprint, PhysicalIndex
from indexing.blueprints.sidecar import SidecarSpec
from indexing.conf import searchsync_settings

CANARY_ENTITY_ID = "__canary__"
CANARY_TENANT_ID = "__canary__"


def serving_settings(blueprint: IndexBlueprint) -> dict:
    settings = copy.deepcopy(blueprint.settings)
    if blueprint.delete_mode == DeleteMode.HARD:
        # A versioned delete's tombstone lives gc_deletes long; a stale upsert
        # arriving after that would resurrect the document, so keep it longer
        # than any replay or retry can be late.
        settings["gc_deletes"] = blueprint.hard_delete_gc_deletes
    spec = SidecarSpec.of(getattr(blueprint, "sidecar", None))
    if spec is not None and spec.main_refresh_interval:
        settings["refresh_interval"] = spec.main_refresh_interval
    replicas = searchsync_settings.INDEX_REPLICAS
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
        blueprint.sidecar = index.revision.definition.get("sidecar") or {}
    return serving_settings(blueprint)


def read_alias_filter(blueprint: IndexBlueprint) -> dict:
    must_not = [{"term": {"tenant_id": CANARY_TENANT_ID}}]
    if blueprint.delete_mode == DeleteMode.TOMBSTONE:
        must_not.append({"term": {"deleted": True}})
    return {"bool": {"must_not": must_not}}


def alias_add_actions(blueprint: IndexBlueprint, index_name: str) -> list[dict]:
    """Point the aliases at ``index_name`` and, when it has one, the sidecar aliases at its sidecar."""
    actions = [
        {"add": {"index": index_name, "alias": blueprint.read_alias, "filter": read_alias_filter(blueprint)}},
        {"add": {"index": index_name, "alias": blueprint.write_alias, "is_write_index": True}},
    ]
    side = sidecar_index_name(index_name)
    if side:
        actions += [
            {"add": {"index": side, "alias": blueprint.sidecar_read_alias, "filter": read_alias_filter(blueprint)}},
            {"add": {"index": side, "alias": blueprint.sidecar_write_alias, "is_write_index": True}},
        ]
    return actions


def sidecar_index_name(index_name: str) -> str:
    """The sidecar of a physical index, or '' when it has none."""
    value = PhysicalIndex.objects.filter(name=index_name).values_list("sidecar", flat=True).first()
    return (value or {}).get("name", "")


def all_aliases(blueprint: IndexBlueprint) -> tuple[str, ...]:
    return (blueprint.read_alias, blueprint.write_alias, blueprint.sidecar_read_alias, blueprint.sidecar_write_alias)


def index_names(index: PhysicalIndex) -> list[str]:
    """The physical index and its sidecar, if any: what gets created, refreshed and deleted together."""
    return [index.name] + ([index.sidecar["name"]] if index.sidecar else [])


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
        while engine.index_exists(locked.physical_name(number)) or engine.index_exists(
                sidecar.index_name(locked.physical_name(number))):
            number += 1
        if revision is None:
            revision = locked.revisions.filter(number=locked.revision).first()
        else:
            # The index is built as the revision says; the row keeps mirroring the live index.
            locked = copy.copy(locked)
            locked.settings, locked.mappings = revision.definition["settings"], revision.definition["mappings"]
            locked.delete_mode = revision.definition["delete_mode"]
            locked.sidecar = revision.definition.get("sidecar") or {}
        settings = serving_settings(locked)
        settings.update(extra_settings or {})
        mappings = copy.deepcopy(locked.mappings)
        side = {}
        spec = SidecarSpec.of(locked.sidecar)
        if spec is not None:
            name = sidecar.index_name(locked.physical_name(number))
            side_settings = sidecar.sidecar_settings(serving_settings(locked), spec)
            side_settings.update(extra_settings or {})
            side = {"name": name, "fields": list(spec.fields), "settings": side_settings,
                    "mappings": sidecar.sidecar_mappings(mappings, spec)}
            mappings = sidecar.main_mappings(mappings, spec)
        index = PhysicalIndex.objects.create(
            blueprint=blueprint,
            number=number,
            name=locked.physical_name(number),
            state=state,
            blueprint_revision=revision.number if revision else locked.revision,
            revision=revision,
            settings=settings,
            mappings=mappings,
            sidecar=side,
        )
    create_engine_indices(index, engine)
    return index


def create_engine_indices(index: PhysicalIndex, engine: SearchEngine) -> None:
    if index.sidecar and not engine.index_exists(index.sidecar["name"]):
        engine.create_index(index.sidecar["name"], index.sidecar["settings"], index.sidecar["mappings"])
    if not engine.index_exists(index.name):
        engine.create_index(index.name, index.settings, index.mappings)


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
    create_engine_indices(live, engine)
    if live.name not in engine.get_alias(blueprint.read_alias) or (
            live.sidecar and live.sidecar["name"] not in engine.get_alias(blueprint.sidecar_read_alias)):
        engine.update_aliases(alias_add_actions(blueprint, live.name))
    return live


def write_target_names(blueprint: IndexBlueprint) -> list[str]:
    return list(blueprint.write_targets().values_list("name", flat=True))

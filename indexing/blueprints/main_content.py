"""Is a main index behind the row, or only behind on the sidecar's fields?

The live consumer does not rewrite a main document for an event that changed only sidecar
fields (``pipeline/sidecar_only.py``): such a document keeps the version of its last content
change, below the row's. Reconciliation, the cutover guard and the document inspector call
it drift only when its content differs from the document built from the row now.
"""

from __future__ import annotations

from typing import Sequence

from indexing.blueprints import sidecar
from indexing.blueprints.documents import builder_for, drop_unmapped
from indexing.blueprints.table_sources import blueprint_source
from indexing.engines import SearchEngine
from indexing.models import IndexBlueprint, PhysicalIndex


def sidecar_fields_of_main(index_name: str) -> tuple[tuple[str, ...], dict] | None:
    """(sidecar fields, main mappings) when ``index_name`` is a main index with a sidecar, else None."""
    row = PhysicalIndex.objects.filter(name=index_name).values_list("sidecar", "mappings").first()
    if not row or not row[0]:
        return None
    return tuple(row[0]["fields"]), row[1]


def same_main_content(stored: dict, built: dict, fields: tuple[str, ...], mappings: dict) -> bool:
    """Does a stored main document hold what ``built`` (a whole document) puts in the main index?"""
    main, _ = sidecar.split(built, fields)
    kept, _ = drop_unmapped(main, mappings)
    return sidecar.main_content(stored) == sidecar.main_content(kept)


def unchanged_main(blueprint: IndexBlueprint, index_name: str, ids: Sequence[str], engine: SearchEngine,
                   using: str) -> set[str]:
    """Those of ``ids`` whose document in the main index ``index_name`` holds the main content of the
    row as it is now on ``using``: behind in version only because later changes were sidecar-only.
    Empty for an index without a sidecar."""
    main = sidecar_fields_of_main(index_name)
    if main is None or not ids:
        return set()
    fields, mappings = main
    stored = engine.mget(index_name, list(ids))
    builder = builder_for(blueprint)
    same = set()
    for event in blueprint_source(blueprint).events_for_ids(list(ids), using=using):
        hit = stored.get(event.entity_id)
        if hit is None or (hit.get("_source") or {}).get("deleted") or event.is_delete:
            continue
        if same_main_content(hit["_source"], builder(event), fields, mappings):
            same.add(event.entity_id)
    return same

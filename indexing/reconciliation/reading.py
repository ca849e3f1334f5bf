"""Reading both sides in keyset chunks: ``(id, version)`` rows from the replica, documents by ``search_after``."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from indexing.blueprints.indices import CANARY_ENTITY_ID
from indexing.engines import SearchEngine
from indexing.reconciliation.compare import (
    DOC_FIELDS,
    ID_FIELD,
    VERSION_FIELD,
    IndexDoc,
)

CHUNK_SIZE = 1000


def row_chunks(model, using: str, chunk_size: int, version_field: str = VERSION_FIELD):
    """``[(id, version), ...]`` pages in id order: ``WHERE id > last ORDER BY id LIMIT n``, never OFFSET."""
    last = None
    while True:
        qs = model.objects.using(using).order_by("pk")
        if last is not None:
            qs = qs.filter(pk__gt=last)
        rows = list(qs.values_list("pk", version_field)[:chunk_size])
        if not rows:
            return
        last = rows[-1][0]
        yield [(str(pk), version) for pk, version in rows]
        if len(rows) < chunk_size:
            return


def doc_chunks(engine: SearchEngine, index: str, chunk_size: int):
    """Pages of every document but the canary, as ``IndexDoc`` (no document bodies)."""
    page: list[IndexDoc] = []
    for hit in engine.search_after(index, ID_FIELD, source=DOC_FIELDS, size=chunk_size):
        if hit["_id"] == CANARY_ENTITY_ID:
            continue
        page.append(IndexDoc.from_hit(hit))
        if len(page) >= chunk_size:
            yield page
            page = []
    if page:
        yield page


def existing_ids(model, using: str, ids: list[str]) -> set[str]:
    """The ids among ``ids`` that have a row; ids the key type cannot hold have none."""
    pk_field = model._meta.pk
    keys = {}
    for doc_id in ids:
        try:
            keys[pk_field.to_python(doc_id)] = doc_id
        except (ValidationError, ValueError, TypeError):
            continue
    if not keys:
        return set()
    found = model.objects.using(using).filter(pk__in=list(keys)).values_list("pk", flat=True)
    return {str(pk) for pk in found}

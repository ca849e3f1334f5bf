"""Comparing the two sides: rows against documents by key and version, documents against rows.

Pure functions, unit-tested without services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Conventions every source model and document builder of searchsync follows:
# the row's version column, and the keyword field holding the entity id.
VERSION_FIELD = "version"
ID_FIELD = "id"
DOC_FIELDS = ["deleted", "updated_at", "tenant_id"]


@dataclass(frozen=True)
class IndexDoc:
    id: str
    version: int
    deleted: bool
    updated_at: datetime | None
    tenant_id: str
    joined: dict = field(default_factory=dict)  # fields built from joined rows, when the source has any

    @classmethod
    def from_hit(cls, hit: dict, joined_fields=()) -> "IndexDoc":
        source = hit.get("_source") or {}
        return cls(hit["_id"], int(hit["_version"]), source.get("deleted") is True,
                   parse_time(source.get("updated_at")), source.get("tenant_id") or "",
                   {name: source.get(name) for name in joined_fields})


def parse_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# --- classification (pure functions) --------------------------------------------


def classify_rows(rows: list[tuple[str, int]], docs: dict[str, IndexDoc],
                  joined: dict[str, dict] | None = None) -> tuple[list[str], list[str]]:
    """(missing, stale) ids among ``(id, version)`` rows, given their documents by id.

    ``joined`` holds, per id, the fields the source builds from joined rows (a brand's name): a
    document showing other values is stale too, whatever its version says."""
    missing, stale = [], []
    for pk, version in rows:
        doc = docs.get(pk)
        if doc is None or doc.deleted:
            missing.append(pk)
        elif doc.version < version or (joined and joined_differ(doc.joined, joined.get(pk, {}))):
            stale.append(pk)
    return missing, stale


def joined_differ(got: dict, expected: dict) -> bool:
    def norm(value):
        return None if value in ("", [], None) else value

    return any(norm(got.get(name)) != norm(value) for name, value in expected.items())


def classify_docs(docs: list[IndexDoc], existing: set[str], expire_before: datetime) -> tuple[list[IndexDoc], list[IndexDoc]]:
    """(orphaned, expired tombstones) among documents, given the ids that have a row."""
    orphaned, expired = [], []
    for doc in docs:
        if doc.id in existing:
            continue  # a tombstone whose row exists is the first pass's "missing"
        if not doc.deleted:
            orphaned.append(doc)
        elif doc.updated_at is not None and doc.updated_at < expire_before:
            expired.append(doc)
    return orphaned, expired

"""Catalog writes through the API join the audit trail: who created, changed or deleted which product,
brand or category, and the fields written. Recorded inside the write's transaction, so the change and
its row commit together or not at all."""

from __future__ import annotations

import audit

# Long texts (a description) are shortened in the trail; the row itself has them.
MAX_VALUE_CHARS = 200


def _shown(value):
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "…"
    return value


def record_write(user, kind: str, verb: str, row, changes: dict | None = None) -> None:
    """``kind`` is product, brand or category; ``verb`` create, update or delete."""
    details = {"tenant_id": row.tenant_id}
    if changes:
        details["changes"] = {name: _shown(value) for name, value in sorted(changes.items())}
    audit.record(user, f"{kind}.{verb}", f"{kind}:{row.pk}", details=details)

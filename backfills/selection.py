"""What a backfill reads: the selection kinds an operator or API client can ask for."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from indexing.sources import Source

KINDS = ("all", "range", "ids", "tenant", "updated")


class InvalidSelection(ValueError):
    pass


def validate(selection: dict) -> dict:
    """Normalise a selection; raises InvalidSelection with a message per problem."""
    kind = selection.get("kind", "all")
    if kind not in KINDS:
        raise InvalidSelection(f"kind must be one of {', '.join(KINDS)}")
    out: dict = {"kind": kind}
    if kind == "range":
        try:
            out["start_id"], out["end_id"] = int(selection["start_id"]), int(selection["end_id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidSelection("a range needs integer start_id and end_id") from None
        if out["start_id"] > out["end_id"]:
            raise InvalidSelection("start_id must not be greater than end_id")
    elif kind == "ids":
        ids = selection.get("ids")
        if not isinstance(ids, list) or not ids:
            raise InvalidSelection("ids must be a non-empty list of integers")
        try:
            out["ids"] = sorted({int(i) for i in ids})
        except (TypeError, ValueError):
            raise InvalidSelection("ids must be integers") from None
    elif kind == "tenant":
        if not selection.get("tenant_id"):
            raise InvalidSelection("tenant needs tenant_id")
        out["tenant_id"] = str(selection["tenant_id"])
    elif kind == "updated":
        for bound in ("since", "until"):
            value = selection.get(bound)
            if value is None:
                continue
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise InvalidSelection(f"{bound} must be an ISO 8601 date-time") from None
            out[bound] = str(value)
        if not ("since" in out or "until" in out):
            raise InvalidSelection("updated needs since and/or until")
    return out


def apply(source: Source, qs: QuerySet, selection: dict) -> QuerySet:
    kind = selection.get("kind", "all")
    if kind == "range":
        return qs.filter(pk__gte=selection["start_id"], pk__lte=selection["end_id"])
    if kind == "ids":
        return qs.filter(pk__in=selection["ids"])
    if kind == "tenant":
        return qs.filter(**{source.tenant_field: selection["tenant_id"]})
    if kind == "updated":
        if "since" in selection:
            qs = qs.filter(**{f"{source.updated_field}__gte": selection["since"]})
        if "until" in selection:
            qs = qs.filter(**{f"{source.updated_field}__lt": selection["until"]})
    return qs

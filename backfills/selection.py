"""What a backfill reads: the selection kinds an operator or API client can ask for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.db.models import QuerySet

from config.api_input import unsafe
from indexing.blueprints.sources import Source

KINDS = ("all", "range", "ids", "tenant", "updated")
# Ids are bigint primary keys; a value PostgreSQL cannot compare is a client error, not a 500.
MIN_ID, MAX_ID = -(2**63), 2**63 - 1
# A selection is stored with the backfill and shown with it: larger id sets belong in a range.
MAX_IDS = 10_000
MAX_TENANT_ID_LENGTH = 255
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)  # PostgreSQL's bound; real zones stay within ±14:00


class InvalidSelection(ValueError):
    pass


def _id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(value)
    number = int(value)
    if not MIN_ID <= number <= MAX_ID:
        raise ValueError(value)
    return number


def _timestamp(bound: str, value) -> str:
    """An ISO 8601 date-time as PostgreSQL will take it: in UTC (Python accepts offsets up to ±23:59,
    PostgreSQL only ±15:59) and within the years both know."""
    if not isinstance(value, str):
        raise InvalidSelection(f"{bound} must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSelection(f"{bound} must be an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if abs(moment.utcoffset()) > MAX_UTC_OFFSET:
        raise InvalidSelection(f"{bound}: a UTC offset must be within ±15:59")
    try:
        return moment.astimezone(timezone.utc).isoformat()
    except OverflowError:
        raise InvalidSelection(f"{bound} is outside the years 1 to 9999 once converted to UTC") from None


def validate(selection: dict) -> dict:
    """Normalise a selection; raises InvalidSelection with a message per problem."""
    kind = selection.get("kind", "all")
    if kind not in KINDS:
        raise InvalidSelection(f"kind must be one of {', '.join(KINDS)}")
    out: dict = {"kind": kind}
    if kind == "range":
        try:
            out["start_id"], out["end_id"] = _id(selection["start_id"]), _id(selection["end_id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidSelection(f"a range needs integer start_id and end_id between {MIN_ID} and {MAX_ID}") from None
        if out["start_id"] > out["end_id"]:
            raise InvalidSelection("start_id must not be greater than end_id")
    elif kind == "ids":
        ids = selection.get("ids")
        if not isinstance(ids, list) or not ids:
            raise InvalidSelection("ids must be a non-empty list of integers")
        if len(ids) > MAX_IDS:
            raise InvalidSelection(f"ids may list at most {MAX_IDS} ids ({len(ids)} given); select a range instead")
        try:
            out["ids"] = sorted({_id(i) for i in ids})
        except (TypeError, ValueError):
            raise InvalidSelection(f"ids must be integers between {MIN_ID} and {MAX_ID}") from None
    elif kind == "tenant":
        tenant = selection.get("tenant_id")
        if not isinstance(tenant, str) or not tenant:
            raise InvalidSelection("tenant needs tenant_id, a non-empty string")
        if len(tenant) > MAX_TENANT_ID_LENGTH or unsafe(tenant):
            raise InvalidSelection(f"tenant_id must be at most {MAX_TENANT_ID_LENGTH} characters, without NUL "
                                   "or lone surrogates")
        out["tenant_id"] = tenant
    elif kind == "updated":
        for bound in ("since", "until"):
            value = selection.get(bound)
            if value is None:
                continue
            out[bound] = _timestamp(bound, value)
        if not ("since" in out or "until" in out):
            raise InvalidSelection("updated needs since and/or until")
        if "since" in out and "until" in out and out["since"] > out["until"]:
            raise InvalidSelection("since must not be after until")
    return out


def apply(source: Source, qs: QuerySet, selection: dict) -> QuerySet:
    kind = selection.get("kind", "all")
    if kind == "dependency":  # fan-outs only: made by the platform, never by a client
        from indexing.blueprints.dependencies import rows_depending

        return rows_depending(source, qs, selection, using=qs.db)
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

"""Sidecar indices: high-velocity fields in a small index of their own.

A blueprint's definition may declare
``"sidecar": {"fields": [...], "refresh_interval": "1s", "main_refresh_interval": "30s"}``.
Every physical index ``<name>_v<N>`` built from such a revision then has a companion
``<name>_v<N>_sidecar`` holding only those fields plus what every document carries (id,
tenant, version, updated_at, deleted). The main index loses those fields and can run with a
long refresh interval (cheap segments, few merges); the sidecar refreshes often and is tiny, so
its refreshes cost little. Both are written from the same events with the same external
version, in the same bulk request, so a stale event loses on both and a delete reaches both;
the live consumer leaves the main document alone when an event changed only sidecar fields
(``pipeline/sidecar_only.py``).

Searches join the two at query time (README: *Sidecar indices*), through two read aliases:
the blueprint's ``read_alias`` and ``<name>_sidecar_current``, moved together by a cutover.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import orjson

from indexing.engines.base import serialize_document
from indexing.models import SIDECAR_SUFFIX

# Fields every document carries: what versions, tombstones, tenants and reconciliation need.
COMMON_FIELDS = ("id", "tenant_id", "version", "updated_at", "deleted")
# Common fields that change with every write of the row: a main document whose other fields are
# unchanged is not rewritten for them (pipeline/sidecar_only.py), so in a main index they tell the
# last change of the main part's content.
VOLATILE_FIELDS = ("version", "updated_at")
SUFFIX = SIDECAR_SUFFIX


@dataclass(frozen=True)
class SidecarSpec:
    fields: tuple[str, ...]
    refresh_interval: str = "1s"
    # With the fast fields moved out, the main index can refresh rarely: this overrides its
    # settings' refresh_interval (None keeps them).
    main_refresh_interval: str | None = None
    # The sidecar's own freshness threshold; None derives it from its refresh interval
    # (indexing/observability/thresholds.py).
    freshness_threshold_ms: int | None = None

    @classmethod
    def of(cls, raw: dict | None) -> "SidecarSpec | None":
        """The sidecar a definition's ``sidecar`` entry (or the blueprint row's) declares, if any."""
        if not raw or not raw.get("fields"):
            return None
        return cls(tuple(raw["fields"]), raw.get("refresh_interval", "1s"), raw.get("main_refresh_interval"),
                   raw.get("freshness_threshold_ms"))


class InvalidSidecar(ValueError):
    pass


def check(spec: SidecarSpec, mappings: dict) -> None:
    """The declared fields must be top-level fields the mapping maps, and not the common ones."""
    properties = mappings.get("properties", {})
    unknown = [f for f in spec.fields if f not in properties]
    if unknown:
        raise InvalidSidecar(f"sidecar fields not in the mapping: {', '.join(unknown)}")
    common = [f for f in spec.fields if f in COMMON_FIELDS]
    if common:
        raise InvalidSidecar(f"sidecar fields every document carries anyway: {', '.join(common)}")
    threshold = spec.freshness_threshold_ms
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1):
        raise InvalidSidecar(f"sidecar freshness_threshold_ms must be a positive whole number of ms, not {threshold!r}")


def index_name(main_index: str) -> str:
    return f"{main_index}{SUFFIX}"


def read_alias(blueprint_name: str) -> str:
    return f"{blueprint_name}{SUFFIX}_current"


def write_alias(blueprint_name: str) -> str:
    return f"{blueprint_name}{SUFFIX}_write"


def main_mappings(mappings: dict, spec: SidecarSpec) -> dict:
    """The main index's mapping: the blueprint's, without the sidecar's fields."""
    result = copy.deepcopy(mappings)
    for name in spec.fields:
        result.get("properties", {}).pop(name, None)
    return result


def sidecar_mappings(mappings: dict, spec: SidecarSpec) -> dict:
    properties = mappings.get("properties", {})
    keep = [f for f in COMMON_FIELDS if f in properties] + list(spec.fields)
    return {"dynamic": mappings.get("dynamic", "strict"),
            "properties": {name: copy.deepcopy(properties[name]) for name in keep}}


def sidecar_settings(main_settings: dict, spec: SidecarSpec) -> dict:
    """Shards, replicas and analysis as the main index has them; the sidecar's own refresh interval."""
    result = {key: copy.deepcopy(value) for key, value in main_settings.items()
              if key in ("number_of_shards", "number_of_replicas", "analysis", "gc_deletes")}
    result["refresh_interval"] = spec.refresh_interval
    return result


def split(document: dict, fields: tuple[str, ...]) -> tuple[dict, dict]:
    """(main document, sidecar document) of one built document."""
    main = {k: v for k, v in document.items() if k not in fields}
    side = {k: v for k, v in document.items() if k in fields or k in COMMON_FIELDS}
    return main, side


def without_volatile(document: dict) -> dict:
    """A document without the fields every write of its row changes: what says whether its content did."""
    return {k: v for k, v in document.items() if k not in VOLATILE_FIELDS}


def main_content(document: dict) -> dict:
    """A main document's content as stored (JSON), without the fields every write changes."""
    return without_volatile(orjson.loads(serialize_document(document)))


def describe(index_sidecar: dict) -> str:
    """One line for the console: name and refresh interval."""
    if not index_sidecar:
        return ""
    return f"{index_sidecar['name']} (refresh {index_sidecar['settings'].get('refresh_interval', '1s')})"

"""A blueprint folder (``blueprint.json``, ``mapping.json``, optionally ``event.schema.json``) read
into a revision definition, and the event schema derived from the mapping when the folder has none.
The relation itself is checked against its database by ``relations.check``."""

from __future__ import annotations

import json
from pathlib import Path

from indexing.blueprints.contracts import event_type_for
from indexing.blueprints.relations import BUILDER, COMMON_FIELDS, DeclarationError, RelationSpec


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DeclarationError(f"{path.name} is missing from {path.parent}") from None
    except json.JSONDecodeError as exc:
        raise DeclarationError(f"{path.name}: not valid JSON ({exc})") from None


def load_folder(directory: str | Path) -> tuple[str, dict]:
    """(aggregate type, revision definition) of a blueprint folder; the relation is not checked here."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DeclarationError(f"{directory} is not a folder")
    declared = _read_json(directory / "blueprint.json")
    aggregate_type = declared.get("aggregate_type")
    if not isinstance(aggregate_type, str) or not aggregate_type.replace("_", "").isalnum():
        raise DeclarationError("blueprint.json: aggregate_type must be a word (letters, digits, _)")
    unknown = set(declared) - {"aggregate_type", "delete_mode", "source", "feed", "golden_queries", "sidecar"}
    if unknown:
        raise DeclarationError(f"blueprint.json: unknown keys {sorted(unknown)}")
    source = declared.get("source")
    spec = RelationSpec.of({**source, "feed": declared.get("feed")} if isinstance(source, dict) else source)
    index = _read_json(directory / "mapping.json")
    mappings = index.get("mappings")
    if not isinstance(mappings, dict) or mappings.get("dynamic") not in ("strict", "false", False):
        raise DeclarationError("mapping.json: mappings must be explicit ('dynamic': 'strict')")
    lacking = [f for f in COMMON_FIELDS if f not in mappings.get("properties", {})]
    if lacking:
        raise DeclarationError(f"mapping.json: every document carries {', '.join(COMMON_FIELDS)}; "
                               f"the mapping lacks {', '.join(lacking)}")
    schema_file = directory / "event.schema.json"
    schema = _read_json(schema_file) if schema_file.exists() else event_schema(aggregate_type, mappings, spec)
    delete_mode = declared.get("delete_mode", "tombstone")
    if delete_mode not in ("tombstone", "hard"):
        raise DeclarationError("blueprint.json: delete_mode is tombstone or hard")
    definition = {
        "settings": index.get("settings", {}), "mappings": mappings, "event_schema": schema,
        "document_builder": BUILDER, "delete_mode": delete_mode,
        "golden_queries": declared.get("golden_queries", []), "sidecar": declared.get("sidecar", {}),
        "relation": spec.as_dict(),
    }
    return aggregate_type, definition


_JSON_TYPES = {"keyword": "string", "text": "string", "wildcard": "string", "ip": "string",
               "long": "integer", "integer": "integer", "short": "integer", "byte": "integer",
               "double": "number", "float": "number", "half_float": "number", "scaled_float": "number",
               "boolean": "boolean", "object": "object", "nested": "array"}


def event_schema(aggregate_type: str, mappings: dict, spec: RelationSpec) -> dict:
    """The SearchIndexEvent schema of a declared blueprint, its payload typed from the mapping.

    The payload is the row: columns under their own names (a renamed one maps to its field's type);
    the key, version, tenant and timestamp columns may be in it too. Nulls are allowed: a column
    without a value is a document without the field."""
    fields = mappings.get("properties", {})
    by_column = {column: fields.get(name) for column, name in spec.rename.items()}
    properties = {}
    for name, field_mapping in {**fields, **by_column}.items():
        if not field_mapping or name in COMMON_FIELDS:
            continue
        kind = "string" if field_mapping.get("type") == "date" else _JSON_TYPES.get(field_mapping.get("type"))
        if kind:
            properties[name] = {"type": [kind, "null"]}
    upsert, delete = event_type_for(aggregate_type, False), event_type_for(aggregate_type, True)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"SearchIndexEvent ({aggregate_type}, generated from the mapping)",
        "type": "object",
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"type": "string", "enum": [upsert, delete]},
            "entity_id": {"type": "string", "minLength": 1},
            "tenant_id": {"type": "string"},
            "version": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807},
            "timestamp": {"type": "string", "format": "date-time"},
            "payload": {"type": "object", "properties": properties},
        },
        "required": ["event_id", "event_type", "entity_id", "tenant_id", "version", "timestamp"],
        "if": {"properties": {"event_type": {"const": upsert}}},
        "then": {"required": ["payload"]},
    }

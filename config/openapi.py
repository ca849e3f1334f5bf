"""Make the schema say what the API answers besides success.

drf-spectacular documents the success response of each operation; the error
answers every endpoint shares are added here from one table, so they cannot
drift per view: 400 with field errors wherever input is read, 401/403 for
authentication and roles, 404 for an unknown id, 409 for a refused state
transition, 503 where Kafka must acknowledge.
"""

from __future__ import annotations

import re

ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
FIELD_ERRORS = {
    "type": "object",
    "description": "Field name → messages; `detail` for errors not tied to a field (bad JSON, NUL characters, "
                   "nesting deeper than 32 levels).",
    "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"},
                                       {"type": "string"}]},
}

# (path regex, method) → (status, description) of refusals a view returns itself.
CONFLICTS = [
    (r"^/api/v1/backfills/$", "post", "The blueprint cannot be backfilled (e.g. versioned by LSN)."),
    (r"^/api/v1/backfills/\{id\}/(pause|resume|cancel|throttle)/$", "post",
     "The backfill is not in a state this step applies to."),
    (r"^/api/v1/cutovers/$", "post", "A cutover of this blueprint is already under way, or its guards refuse it."),
    (r"^/api/v1/cutovers/\{id\}/\w+/$", "post", "The cutover is not in a state this step applies to."),
    (r"^/api/v1/documents/\{blueprint\}/\{id\}/reindex/$", "post",
     "Nothing to re-index (the row is gone and no index holds a live document), or no way to (no source)."),
]
UNAVAILABLE = [(r"^/api/v1/dead-letters/(\{id\}/)?replay/$", "post", "Kafka did not acknowledge every replayed letter.")]


def _ref(name: str) -> dict:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("FieldErrors", FIELD_ERRORS)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})

            def add(code: str, description: str, schema: str = "Error"):
                responses.setdefault(code, {"description": description, **_ref(schema)})

            if method in ("post", "put", "patch") or operation.get("parameters"):
                add("400", "Invalid input: field errors, or a query parameter or body the API refuses.", "FieldErrors")
            add("401", "Not authenticated.")
            if method not in ("get", "head", "options"):
                add("403", "The user lacks the permission this change needs.")
            if "{id}" in path:
                add("404", "No such object.")
            for pattern, verb, description in CONFLICTS:
                if verb == method and re.match(pattern, path):
                    add("409", description)
            for pattern, verb, description in UNAVAILABLE:
                if verb == method and re.match(pattern, path):
                    add("503", description)
    return result

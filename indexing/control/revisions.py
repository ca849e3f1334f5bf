"""Blueprint revisions: a definition changes only through a new immutable revision,
validated against the real engine before it is accepted, and served through a cutover.

``propose`` validates on a scratch index (created with the revision's settings and
mapping, filled with documents the blueprint's builder makes from real rows, the
golden queries run against it, deleted in ``finally``) and only then records the
revision. The blueprint row mirrors the revision of its live index: ``apply`` is
called when an index built from a revision goes live (cutover, rollback, bootstrap).
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
import re
import uuid

from django.db import transaction
from django.db.models import Max

from indexing.blueprints import sidecar
from indexing.blueprints.documents import get_builder
from indexing.engines import SearchEngine, get_engine
from indexing.models import BlueprintRevision, IndexBlueprint
from indexing.blueprints.sidecar import SidecarSpec
from indexing.blueprints import relations
from indexing.blueprints.sources import get_source
from indexing.blueprints.table_sources import blueprint_source
from indexing.pipeline.writer import WriteTarget, plan_writes

SCRATCH_PREFIX = "searchsync-scratch-"
SAMPLE_ROWS = 50


class RevisionRejected(Exception):
    """The engine refused the revision; ``cause`` names the field, analyzer or query at fault."""

    def __init__(self, message: str, cause: str = ""):
        super().__init__(message)
        self.cause = cause


class NothingToPropose(Exception):
    pass


# -- content ------------------------------------------------------------------------


# Keys added after revisions were first recorded: absent or empty, they leave the content hash
# (and the diff) as it was, so an unchanged definition is never proposed again.
OPTIONAL_KEYS = {"sidecar": {}, "relation": {}}


def canonical(definition: dict) -> dict:
    return {k: definition.get(k) for k in BlueprintRevision.DEFINITION_KEYS
            if k not in OPTIONAL_KEYS or definition.get(k)}


def content_hash(definition: dict) -> str:
    text = json.dumps(canonical(definition), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def row_fields(definition: dict) -> dict:
    """The IndexBlueprint fields a revision determines (golden queries live on the revision only)."""
    return {key: definition.get(key, OPTIONAL_KEYS.get(key)) for key in BlueprintRevision.DEFINITION_KEYS
            if key != "golden_queries"}


def pretty(definition: dict) -> list[str]:
    return json.dumps(canonical(definition), indent=2, sort_keys=True).splitlines()


def diff(before: dict | None, after: dict, before_name: str = "before", after_name: str = "after") -> list[str]:
    """Unified diff of the pretty JSON of two definitions."""
    return list(difflib.unified_diff(pretty(before) if before is not None else [], pretty(after),
                                     fromfile=before_name, tofile=after_name, lineterm=""))


def serving_or_latest(blueprint: IndexBlueprint) -> BlueprintRevision | None:
    return blueprint.serving_revision or blueprint.latest_revision()


# -- recording -----------------------------------------------------------------------


def default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def record(blueprint: IndexBlueprint, definition: dict, *, by: str, reason: str,
           validation: dict | None = None) -> BlueprintRevision:
    """Store a new revision (number = previous + 1). Callers validate first: see ``propose``."""
    if not reason.strip():
        raise ValueError("a revision needs a reason")
    definition = {k: definition.get(k, OPTIONAL_KEYS.get(k)) if k in OPTIONAL_KEYS else definition[k]
                  for k in BlueprintRevision.DEFINITION_KEYS}
    with transaction.atomic():
        locked = IndexBlueprint.objects.select_for_update().get(pk=blueprint.pk)
        number = (locked.revisions.aggregate(n=Max("number"))["n"] or 0) + 1
        return BlueprintRevision.objects.create(blueprint=locked, number=number, content_hash=content_hash(definition),
                                                definition=definition, created_by=by or default_author(),
                                                reason=reason, validation=validation or {})


def propose(blueprint: IndexBlueprint, definition: dict, *, by: str | None = None, reason: str,
            engine: SearchEngine | None = None) -> BlueprintRevision:
    """Validate ``definition`` against the engine and record it as the blueprint's next revision."""
    latest = blueprint.latest_revision()
    if latest is not None and latest.content_hash == content_hash(definition):
        raise NothingToPropose(f"{blueprint.name}: the definition is revision {latest.number} already")
    if not reason.strip():
        raise ValueError("a revision needs a reason")
    validation = validate(blueprint, definition, engine or get_engine())
    return record(blueprint, definition, by=by or default_author(), reason=reason, validation=validation)


def apply(blueprint: IndexBlueprint, revision: BlueprintRevision) -> None:
    """Make the blueprint row mirror ``revision`` (what the consumer validates and builds with)."""
    fields = {**row_fields(revision.definition), "revision": revision.number}
    IndexBlueprint.objects.filter(pk=blueprint.pk).update(**fields)
    for key, value in fields.items():
        setattr(blueprint, key, value)


def follow_live_index(blueprint: IndexBlueprint) -> None:
    """After a swap or rollback: the serving revision is the live index's."""
    blueprint.refresh_from_db()
    revision = blueprint.serving_revision
    if revision is not None:
        apply(blueprint, revision)


# -- validation against the real engine ------------------------------------------------


def scratch_settings(blueprint: IndexBlueprint, definition: dict) -> dict:
    from indexing.blueprints.indices import serving_settings

    probe = IndexBlueprint(settings=definition["settings"], delete_mode=definition["delete_mode"],
                           hard_delete_gc_deletes=blueprint.hard_delete_gc_deletes)
    result = serving_settings(probe)
    result.update(number_of_replicas=0, number_of_shards=1)
    return result


def validate(blueprint: IndexBlueprint, definition: dict, engine: SearchEngine) -> dict:
    """Create a scratch index with the definition, index sample documents, run the golden queries.

    Raises ``RevisionRejected`` naming the cause; the scratch index is always deleted."""
    scratch = f"{SCRATCH_PREFIX}{blueprint.name}-{uuid.uuid4().hex[:8]}".lower()
    spec = SidecarSpec.of(definition.get("sidecar"))
    mappings = definition["mappings"]
    if spec is not None:
        try:
            sidecar.check(spec, mappings)
        except sidecar.InvalidSidecar as exc:
            raise RevisionRejected(str(exc), cause="sidecar") from exc
        mappings = sidecar.main_mappings(mappings, spec)
    scratch_sidecar = sidecar.index_name(scratch) if spec else None
    try:
        try:
            settings_ = scratch_settings(blueprint, definition)
            engine.create_index(scratch, settings_, mappings)
            if spec is not None:
                engine.create_index(scratch_sidecar, sidecar.sidecar_settings(settings_, spec),
                                    sidecar.sidecar_mappings(definition["mappings"], spec))
        except engine.request_errors as exc:
            raise rejected("settings or mapping rejected", exc) from exc
        documents = _index_samples(blueprint, definition, engine, scratch, scratch_sidecar)
        queries = _run_golden_queries(definition, engine, scratch)
        return {"engine": engine.kind, "documents": documents, "golden_queries": queries,
                **({"sidecar": list(spec.fields)} if spec else {})}
    finally:
        engine.delete_index(scratch)
        if scratch_sidecar:
            engine.delete_index(scratch_sidecar)


def _index_samples(blueprint: IndexBlueprint, definition: dict, engine: SearchEngine, scratch: str,
                   scratch_sidecar: str | None = None) -> int:
    if definition.get("relation"):  # a declared relation: samples of the proposed one, not the serving one
        spec = relations.RelationSpec.of(definition["relation"])
        source = relations.relation_source(blueprint.name, blueprint.aggregate_type, spec)
        builder = relations.document_builder(spec)
    else:
        try:
            builder = get_builder(definition["document_builder"])
        except LookupError as exc:
            raise RevisionRejected(str(exc), cause=f"document_builder {definition['document_builder']!r}") from exc
        try:
            source = blueprint_source(blueprint)  # samples shaped as the blueprint's own events
        except LookupError:
            source = get_source(blueprint.source_model)  # LSN-versioned table changes: the row's fields all the same
    rows = source.model.objects.using(source.replica_alias).order_by("-pk")[:SAMPLE_ROWS]
    # The same planning as every document write (build, drop unmapped, split, size check), aimed at
    # the scratch indices and sent here: a scratch index's answers must not become dead letters.
    spec = SidecarSpec.of(definition.get("sidecar"))
    side = ({"name": scratch_sidecar, "fields": list(spec.fields),
             "mappings": sidecar.sidecar_mappings(definition["mappings"], spec)} if scratch_sidecar else None)
    main = sidecar.main_mappings(definition["mappings"], spec) if spec else definition["mappings"]
    plan = plan_writes(blueprint, [WriteTarget(scratch, main, side)], [(None, source.to_event(row)) for row in rows],
                       builder=builder)
    if plan.result.dead:
        first = plan.result.dead[0]
        raise RevisionRejected(f"sample document {first.entity_id}: {first.reason.label}: {first.error}",
                               cause=str(first.reason.value))
    actions = plan.actions
    if not actions:
        return 0
    failed = [r for r in engine.bulk(actions) if not r.ok]
    if failed:
        first = failed[0]
        raise RevisionRejected(
            f"{len(failed)} of {len(actions)} sample documents rejected; document {first.action.id}: "
            f"{first.error_type}: {first.reason}", cause=_cause(first.reason or ""))
    engine.refresh(scratch)
    return len(actions)


def _run_golden_queries(definition: dict, engine: SearchEngine, scratch: str) -> list[dict]:
    results = []
    for golden in definition.get("golden_queries", []):
        body = {"size": golden.get("top_k", 10), "_source": False, "query": golden["query"]}
        try:
            hits = engine.search(scratch, body)["hits"]["hits"]
        except engine.request_errors as exc:
            raise rejected(f"golden query {golden.get('name', '?')!r} failed", exc) from exc
        results.append({"name": golden.get("name", "?"), "hits": len(hits)})
    return results


def rejected(what: str, exc: Exception) -> RevisionRejected:
    kind, reason = explain(exc)
    return RevisionRejected(f"{what}: {kind}: {reason}", cause=_cause(reason))


def explain(exc: Exception) -> tuple[str, str]:
    """(error type, reason) of an engine error, the root cause first, e.g.
    ('mapper_parsing_exception', 'analyzer [nope] has not been configured in mappings')."""
    info = getattr(exc, "info", None)
    if not isinstance(info, dict):
        info = getattr(exc, "body", None)
    error = info.get("error") if isinstance(info, dict) else None
    if not isinstance(error, dict):
        return type(exc).__name__, str(exc)
    root = (error.get("root_cause") or [error])[0]
    kind, reason = root.get("type", error.get("type", "error")), root.get("reason", error.get("reason", ""))
    # The detail sits in caused_by on some engines and versions, in suppressed on others
    # (OpenSearch 3: "Failed to build analyzers: [x]" with the missing tokenizer suppressed).
    for detail in _nested_errors(error):
        if detail.get("reason") and detail["reason"] not in reason:
            reason = f"{reason} (caused by {detail.get('type')}: {detail['reason']})"
    return kind, reason


def _nested_errors(error: dict):
    for key in ("caused_by", "suppressed"):
        value = error.get(key)
        for nested in (value if isinstance(value, list) else [value]):
            if isinstance(nested, dict):
                yield nested
                yield from _nested_errors(nested)


_NAMED = re.compile(r"(analyzer|tokenizer|filter|char_filter|normalizer|field|type)\s*\[([^\]]+)\]", re.I)
_UNDER_NAME = re.compile(r"failed to find (\w+) under name \[([^\]]+)\]", re.I)


def _cause(reason: str) -> str:
    """'analyzer nope', 'field price_minor'... from an engine reason, or the reason itself."""
    match = _UNDER_NAME.search(reason) or _NAMED.search(reason)
    if match:
        return f"{match.group(1).lower()} {match.group(2)}"
    return reason[:200]

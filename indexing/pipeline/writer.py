"""The document writer: events → documents → versioned bulk writes → resolved outcomes.

The one place that builds documents and writes them, for the live consumer
(``processor.py``) and for backfills (``backfills/runner.py``); reconciliation
repairs re-emit through the outbox and so reach the index through here too.
For each event and each write target:

- a delete on a hard-delete blueprint becomes a versioned delete; any other
  delete a logical tombstone;
- the blueprint's builder makes the document (a builder error dead-letters that
  event only), fields the target's mapping does not know are dropped and counted;
- a document over ``MAX_DOCUMENT_BYTES`` is dead-lettered as too large;
- a target with a sidecar index gets two actions: the sidecar's fields (plus id, tenant,
  version, updated_at, deleted) to the sidecar, the rest to the main index, same version;
  given the live consumer's memory of main writes, the main action is left out when the
  event did not change the main part's content (``sidecar_only.py``);
- everything else goes to the bulk sink with the event's version as external
  version: indexed, stale (409, counted, never retried) or a dead letter.

Every event passed in is resolved when ``write_documents`` returns; dead letters
and unmapped fields are already stored.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable


from indexing.pipeline import dead_letters, visibility
from indexing.pipeline.sidecar_only import MainWrites, main_digest
from indexing.blueprints import sidecar
from indexing.blueprints.contracts import Event, Incoming
from indexing.blueprints.indices import CANARY_ENTITY_ID
from indexing.pipeline.dead_letters import Letter
from indexing.blueprints.documents import MappedFields, builder_for, record_unmapped, tombstone_document
from indexing.engines import BulkAction, bulk_body, bulk_chunks, serialize_document
from indexing.models import DeadLetter, DeleteMode, IndexBlueprint
from indexing.pipeline.bulk_sink import BulkSink
from indexing.conf import searchsync_settings


@dataclass(frozen=True)
class WriteTarget:
    name: str
    mappings: dict
    sidecar: dict | None = None  # {"name", "fields", "mappings", ...} when the index has a sidecar


def write_targets(blueprint: IndexBlueprint) -> list[WriteTarget]:
    """The live index and any index being built: every one of them gets every write (with its sidecar)."""
    return [WriteTarget(name, mappings, side or None)
            for name, mappings, side in blueprint.write_targets().values_list("name", "mappings", "sidecar")]


def target_of(index) -> WriteTarget:
    """The write target of one physical index (a backfill's), sidecar included."""
    return WriteTarget(index.name, index.mappings, index.sidecar or None)


def _parts(target: WriteTarget, document: dict) -> list[tuple[str, dict, dict]]:
    """(index, mappings, document) for the target and its sidecar: the sidecar's fields go to it only."""
    if not target.sidecar:
        return [(target.name, target.mappings, document)]
    main, side = sidecar.split(document, tuple(target.sidecar["fields"]))
    return [(target.name, target.mappings, main), (target.sidecar["name"], target.sidecar["mappings"], side)]


@dataclass
class WriteResult:
    indexed: list[Event] = field(default_factory=list)  # one entry per written document (per target)
    stale: int = 0
    retried: int = 0
    rejected_429: int = 0
    not_ready: int = 0  # item answers "the cluster is not ready" (retried, counted in ``retried`` too)
    unavailable_waits: int = 0  # whole requests nobody answered (waited out, never dead-lettered)
    documents: int = 0  # actions sent to the cluster
    main_unchanged: int = 0  # main parts not sent: the event changed only sidecar fields
    bulk_seconds: float = 0.0
    acked_at: float = 0.0
    dead: list[Letter] = field(default_factory=list)
    dropped_fields: Counter = field(default_factory=Counter)  # (index, dotted field) → documents


def as_message(blueprint: IndexBlueprint, event: Event) -> tuple[Incoming, Event]:
    """An event that never was a Kafka message (a backfilled row), as the message it would have been,
    so a replayed dead letter goes through the live path. A row read without an event id gets its own
    here: each backfilled write is its own event, and only the ones that become letters need the id."""
    if not event.event_id:
        event = with_new_event_id(event, str(uuid.uuid4()))
    return Incoming(blueprint.topic, -1, -1, event.entity_id.encode(), json.dumps(event.to_json()).encode()), event


def letter_for(blueprint: IndexBlueprint, message: Incoming | None, reason, error: str, event: Event,
               target_index: str = "") -> Letter:
    if message is None:
        message, event = as_message(blueprint, event)
    return Letter.for_event(message, reason, error, event, target_index)


def with_new_event_id(event: Event, event_id: str) -> Event:
    return dataclasses.replace(event, event_id=event_id)


@dataclass
class WritePlan:
    """Documents built and checked, not yet sent: what ``send_writes`` needs to resolve every event."""

    actions: list[BulkAction] = field(default_factory=list)
    body: bytes | None = None  # the actions' bulk body, when built ahead (``prebuild_body``)
    owners: dict = field(default_factory=dict)  # id(action) -> (message, event)
    result: WriteResult = field(default_factory=WriteResult)
    samples: dict = field(default_factory=dict)
    # Sidecar-only writes: the memory consulted, the digest of each main action sent, and the main
    # parts left out as unchanged, (index, event, when their content was acknowledged).
    main_writes: MainWrites | None = None
    main_digests: dict = field(default_factory=dict)
    unchanged: list = field(default_factory=list)


def write_documents(blueprint: IndexBlueprint, targets: list[WriteTarget],
                    events: Iterable[tuple[Incoming | None, Event]], sink: BulkSink, *,
                    max_document_bytes: int | None = None) -> WriteResult:
    """Write each event's document to every target; ``None`` as message means "not from Kafka"."""
    return send_writes(blueprint, plan_writes(blueprint, targets, events, max_document_bytes=max_document_bytes),
                       sink)


def plan_writes(blueprint: IndexBlueprint, targets: list[WriteTarget],
                events: Iterable[tuple[Incoming | None, Event]], *,
                max_document_bytes: int | None = None, builder=None, main_writes: MainWrites | None = None,
                superseding: frozenset | set = frozenset()) -> WritePlan:
    """The Python half of a write (build, drop unmapped, size check); no I/O, so it can overlap a bulk in flight.

    ``builder``: another definition's (a proposed revision validated on a scratch index), else the blueprint's.
    ``main_writes``: the live consumer's memory of main writes; with it, a main part whose content the
    event left unchanged is not sent, unless its entity is in ``superseding`` (it had other events in
    the batch, never compared)."""
    limit = max_document_bytes or searchsync_settings.MAX_DOCUMENT_BYTES
    plan = WritePlan(main_writes=main_writes if main_writes is not None and main_writes.enabled else None)
    memory = plan.main_writes
    result, actions, owners, samples = plan.result, plan.actions, plan.owners, plan.samples
    builder = builder or builder_for(blueprint)
    hard_delete = blueprint.delete_mode == DeleteMode.HARD
    fields: dict[int, MappedFields] = {}  # by id() of each target's mappings, held by ``targets`` meanwhile

    def reject(message, reason, error, event, target_index=""):
        result.dead.append(letter_for(blueprint, message, reason, error, event, target_index))

    for message, event in events:
        if event.is_delete and hard_delete:
            for target in targets:
                if memory is not None:
                    memory.forget(target.name, event.entity_id)
                for name in [target.name] + ([target.sidecar["name"]] if target.sidecar else []):
                    action = BulkAction("delete", name, event.entity_id, event.version)
                    actions.append(action)
                    owners[id(action)] = (message, event)
            continue
        try:
            document = tombstone_document(event) if event.is_delete else builder(event)
        except Exception as exc:  # a builder bug must not stall the partition or the backfill
            reject(message, DeadLetter.Reason.BUILD_FAILED, f"{type(exc).__name__}: {exc}", event)
            continue
        for target in targets:
            for index, mappings, part in _parts(target, document):
                mapped = fields.get(id(mappings))
                if mapped is None:
                    mapped = fields[id(mappings)] = MappedFields(mappings)
                kept, dropped = mapped.keep(part)
                for name, sample in dropped.items():
                    result.dropped_fields[(index, name)] += 1
                    samples[(index, name)] = sample
                digest = None
                # The canary is written in full: it measures each index's commit → searchable lag.
                if memory is not None and target.sidecar and index == target.name and event.entity_id != CANARY_ENTITY_ID:
                    digest = main_digest(kept)
                    known = None if event.entity_id in superseding else \
                        memory.unchanged(index, event.entity_id, event.version, digest)
                    if known is not None:
                        # The main index already holds this content: only the sidecar is written.
                        plan.unchanged.append((index, event, known.acked_at))
                        memory.remember(index, event.entity_id, event.version, digest, known.acked_at)
                        continue
                # Serialised once: the size check measures the bytes the bulk body then carries.
                source = serialize_document(kept)
                if len(source) > limit:
                    if memory is not None:
                        memory.forget(index, event.entity_id)
                    reject(message, DeadLetter.Reason.TOO_LARGE, f"document is {len(source)} bytes, limit {limit}",
                           event, index)
                    continue
                action = BulkAction("index", index, event.entity_id, event.version, kept, source)
                actions.append(action)
                owners[id(action)] = (message, event)
                if digest is not None:
                    plan.main_digests[id(action)] = digest
                    # Unknown until this write is answered: a later batch prepared meanwhile writes in full.
                    memory.forget(index, event.entity_id)
    return plan


def prebuild_body(plan: WritePlan, chunk_size: int, max_bytes: int | None = None) -> WritePlan:
    """Serialise the plan's bulk body now, off the request's critical path, if it is one request."""
    if plan.actions and len(bulk_chunks(plan.actions, chunk_size, max_bytes)) == 1:
        plan.body = bulk_body(plan.actions)
    return plan


def send_writes(blueprint: IndexBlueprint, plan: WritePlan, sink: BulkSink) -> WriteResult:
    """The I/O half: bulk the planned actions until each is resolved, then store dead letters and unmapped fields."""
    result, owners = plan.result, plan.owners
    started = time.monotonic()
    written = sink.write(plan.actions, body=plan.body)
    result.bulk_seconds = time.monotonic() - started
    result.documents = len(plan.actions)
    result.acked_at = written.acked_at
    result.main_unchanged = len(plan.unchanged)
    if plan.main_writes is not None:
        _remember_main_writes(plan, written)
    result.indexed = [owners[id(a)][1] for a in written.indexed]
    result.stale = len(written.stale)
    result.retried = written.retried
    result.rejected_429 = written.rejected_429
    result.not_ready = written.not_ready
    result.unavailable_waits = written.unavailable_waits
    for failure in written.failed:
        message, event = owners[id(failure.action)]
        result.dead.append(letter_for(blueprint, message, failure.reason, failure.error, event, failure.action.index))

    if result.dead:
        dead_letters.record(blueprint, result.dead)
    if result.dropped_fields:
        record_unmapped(result.dropped_fields, plan.samples)
    # Read-your-writes: while an API client waits on this aggregate, say which versions each index holds;
    # an unchanged main part holds the event's version since its content was acknowledged.
    visibility.acknowledge(blueprint.aggregate_type, written.indexed, written.acked_at,
                           unchanged=[(index, event.entity_id, event.version, at) for index, event, at in plan.unchanged])
    return result


def _remember_main_writes(plan: WritePlan, written) -> None:
    """What the main indices now hold: the content written, or unknown after a stale or failed write."""
    memory, digests = plan.main_writes, plan.main_digests
    for action in written.indexed:
        digest = digests.get(id(action))
        if digest is not None:
            memory.remember(action.index, action.id, action.version, digest, written.acked_at)
    for action in [*written.stale, *(failure.action for failure in written.failed)]:
        if id(action) in digests:
            memory.forget(action.index, action.id)

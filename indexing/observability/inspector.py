"""One document followed through the whole path: database row → outbox → Kafka → index → search.

Answers the on-call question "product 123 shows the old price in search; why?" from what each
stage holds for that one entity right now:

- the database: the row as the documents are built from it (version with joined rows, tenant);
- the outbox: the entity's latest rows, published or waiting, and the relay's dead letter of one;
- the stream: the partition its events go to (murmur2 of the key, computed as the producers do,
  not read from the topic: finding the message itself would mean scanning the partition) and the
  consumer group's committed offset and lag there;
- every write target (live index, its sidecar, an index being built): the stored version and
  tombstone flag, read in real time, and whether a search through the read alias finds it now;
- its dead letters and the audit events that touched it;

then ``verdict.py`` reads those facts into one line. Each stage's failure is reported on that
stage, so a down broker still leaves the database and index answers on the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections, transaction
from django.db.models import Q

from audit.models import AuditEvent
from indexing.blueprints.main_content import unchanged_main
from indexing.blueprints.sources import Source
from indexing.blueprints.table_sources import blueprint_source, versions_are_lsns
from indexing.conf import searchsync_settings
from indexing.core import liveness
from indexing.core.partitioning import partition_for
from indexing.engines import get_engine
from indexing.models import DeadLetter, IndexBlueprint, OutboxEvent, PhysicalIndex
from indexing.observability.lag import consumer_lag
from indexing.pipeline.writer import write_targets

log = logging.getLogger(__name__)

OUTBOX_ROWS = 5
DEAD_LETTERS = 20
AUDIT_EVENTS = 50
# The outbox has no index on the aggregate id (every one would cost the application's writes): the
# lookup walks the creation-time index backwards, which finds a recently changed entity at once,
# and gives up after this long on a large table rather than hold a console request.
OUTBOX_LOOKUP_TIMEOUT_MS = 2000


class BadDocumentId(ValueError):
    """The id cannot be a key of the blueprint's source (not a number for an integer key, too long...)."""


@dataclass
class DatabaseState:
    exists: bool | None = None  # None: the source could not be read
    version: int | None = None  # the document's version as built from the rows now
    updated_at: datetime | None = None
    tenant_id: str | None = None
    database: str = "default"
    note: str = ""
    error: str = ""


@dataclass
class OutboxRow:
    event_id: str
    event_type: str
    version: int
    created_at: datetime
    published_at: datetime | None
    state: str  # waiting | published | dead_lettered
    dead_letter_id: int | None = None


@dataclass
class OutboxState:
    used: bool = True  # False: the blueprint is fed by table changes, not the outbox
    rows: list[OutboxRow] = field(default_factory=list)
    publisher: str = "relay"
    relays_live: int | None = None  # relays with a fresh heartbeat for this source database
    error: str = ""

    @property
    def waiting(self) -> list[OutboxRow]:
        return [r for r in self.rows if r.state == "waiting"]


@dataclass
class StreamState:
    topic: str
    partition: int | None = None
    partitions: int | None = None
    partition_method: str = ""
    committed_offset: int | None = None
    end_offset: int | None = None
    lag: int | None = None
    consumers_live: int | None = None
    error: str = ""


@dataclass
class IndexCopy:
    index: str
    role: str  # main | sidecar
    state: str  # the physical index's state: live, building, ready
    read_alias: str
    found: bool | None = None  # None: the index could not be read
    version: int | None = None
    deleted: bool | None = None
    # Found by a search through the read alias at the version the index holds; None: not behind it.
    searchable: bool | None = None
    searched_version: int | None = None  # what that search sees (searches see the last refresh)
    # A main copy behind the row's version whose content is the row's: only sidecar fields changed since.
    main_unchanged: bool = False
    error: str = ""


@dataclass
class LetterRef:
    id: int
    source: str
    reason: str
    status: str
    version: int | None
    target_index: str
    created_at: datetime
    error: str


@dataclass
class AuditRef:
    id: int
    created_at: datetime
    actor: str
    action: str
    target: str
    outcome: str


@dataclass
class Inspection:
    blueprint: IndexBlueprint
    entity_id: str
    database: DatabaseState
    outbox: OutboxState
    stream: StreamState
    index: list[IndexCopy]
    dead_letters: list[LetterRef]
    audit: list[AuditRef]
    state: str = ""  # the verdict's short name, e.g. in_sync, waiting_in_outbox
    verdict: str = ""

    @property
    def pending_dead_letters(self) -> list[LetterRef]:
        return [d for d in self.dead_letters if d.status == DeadLetter.Status.PENDING]


def audit_target(blueprint: IndexBlueprint, entity_id: str) -> str:
    """The audit target of an operator action on one document (a re-index)."""
    return f"document:{blueprint.name}/{entity_id}"


def source_of(blueprint: IndexBlueprint) -> Source | None:
    try:
        return blueprint_source(blueprint)
    except LookupError:
        return None


def clean_id(blueprint: IndexBlueprint, raw: str) -> str:
    """The id as the source's key has it, or ``BadDocumentId`` saying why it cannot be one."""
    raw = raw.strip()
    # "/" would end the id's path segment in the page's and the API's address.
    if not raw or len(raw) > 255 or any(ord(c) < 32 or c == "/" for c in raw):
        raise BadDocumentId("an id is 1 to 255 printable characters other than /")
    source = source_of(blueprint)
    if source is None:
        return raw
    key = source.model._meta.pk
    try:
        value = key.to_python(raw)
    except Exception:
        raise BadDocumentId(f"{raw!r} is not a valid {key.get_internal_type()} key of {blueprint.name}") from None
    low, high = connections[source.database].ops.integer_field_range(key.get_internal_type()) \
        if isinstance(value, int) else (None, None)
    if low is not None and not low <= value <= high:
        raise BadDocumentId(f"{raw} is outside the range of {blueprint.name}'s keys")
    return str(value)


def inspect(blueprint: IndexBlueprint, entity_id: str) -> Inspection:
    """Everything known about one document now; ``entity_id`` as ``clean_id`` returns it."""
    from indexing.observability.verdict import judge

    source = source_of(blueprint)
    letters = _dead_letters(blueprint, entity_id)
    result = Inspection(
        blueprint=blueprint, entity_id=entity_id,
        database=_database(blueprint, source, entity_id),
        outbox=_outbox(blueprint, source, entity_id),
        stream=_stream(blueprint, entity_id),
        index=_index(blueprint, entity_id),
        dead_letters=letters,
        audit=_audit(blueprint, entity_id, [d.id for d in letters]),
    )
    _mark_unchanged_main(blueprint, result)
    result.state, result.verdict = judge(result)
    return result


def _mark_unchanged_main(blueprint: IndexBlueprint, result: Inspection) -> None:
    """Main copies behind the row only on sidecar-only changes (``blueprints.main_content``)."""
    version = result.database.version
    behind = [c for c in result.index if c.role == "main" and c.found and not c.deleted and version is not None
              and c.version is not None and c.version < version]
    for copy in behind:
        try:
            copy.main_unchanged = result.entity_id in unchanged_main(
                blueprint, copy.index, [result.entity_id], get_engine(), result.database.database)
        except Exception as exc:
            log.warning("inspecting %s %s: main content of %s: %s", blueprint.name, result.entity_id, copy.index, exc)


# -- stages -------------------------------------------------------------------------


def _database(blueprint: IndexBlueprint, source: Source | None, entity_id: str) -> DatabaseState:
    if source is None:
        return DatabaseState(error=f"no source is registered as {blueprint.source_model!r}: the row cannot be read")
    state = DatabaseState(database=source.database)
    try:
        row = source.model.objects.using(source.database).filter(pk=entity_id).first()
        state.exists = row is not None
        if row is None:
            return state
        state.updated_at = getattr(row, source.updated_field, None)
        state.tenant_id = str(getattr(row, source.tenant_field, "") or "")
        if versions_are_lsns(blueprint):
            state.note = "versions are WAL positions of the row's changes: the row itself does not carry one"
            return state
        # The version the document is built with, joined rows included (a brand rename raises it).
        events = source.events_for_ids([row.pk], using=source.database)
        if events:
            state.version = events[0].version
            state.tenant_id = events[0].tenant_id
    except Exception as exc:
        log.warning("inspecting %s %s: database: %s", blueprint.name, entity_id, exc)
        state.error = f"{type(exc).__name__}: {exc}"[:500]
    return state


def _outbox(blueprint: IndexBlueprint, source: Source | None, entity_id: str) -> OutboxState:
    if blueprint.fed_by_table_changes:
        return OutboxState(used=False, publisher="debezium")
    database = source.database if source is not None else "default"
    state = OutboxState(publisher=searchsync_settings.PUBLISHER)
    try:
        with transaction.atomic(using=database):
            with connections[database].cursor() as cur:
                cur.execute(f"SET LOCAL statement_timeout = {OUTBOX_LOOKUP_TIMEOUT_MS}")
            rows = list(OutboxEvent.objects.using(database).filter(
                aggregate_type=blueprint.aggregate_type, aggregate_id=entity_id).order_by("-created_at")[:OUTBOX_ROWS])
        relayed = dict(DeadLetter.objects.filter(source=DeadLetter.Source.OUTBOX, event_id__in=[
            str(r.event_id) for r in rows]).values_list("event_id", "pk"))
        for r in rows:
            letter = relayed.get(str(r.event_id))
            status = "dead_lettered" if letter else ("published" if r.published_at else "waiting")
            state.rows.append(OutboxRow(str(r.event_id), r.event_type, r.version, r.created_at, r.published_at, status,
                                        letter))
    except Exception as exc:
        state.error = f"{type(exc).__name__}: {exc}"[:500]
    if state.publisher == "relay":
        try:
            state.relays_live = liveness.live_relays_by_source().get(database, 0)
        except Exception as exc:
            state.error = state.error or f"relay liveness: {exc}"[:500]
    return state


def _stream(blueprint: IndexBlueprint, entity_id: str) -> StreamState:
    state = StreamState(topic=blueprint.topic)
    try:
        state.consumers_live = liveness.live_consumers(blueprint.name)
    except Exception as exc:
        state.error = f"consumer liveness: {exc}"[:500]
    try:
        lags = consumer_lag(blueprint)
    except Exception as exc:
        state.error = f"kafka: {exc}"[:500]
        return state
    if not lags:
        state.error = f"topic {blueprint.topic} does not exist (yet)"
        return state
    state.partitions = len(lags)
    if blueprint.fed_by_table_changes:
        # Debezium keys table changes by the row's key struct, serialised by the connector's converter.
        state.partition_method = "not computed: table changes are keyed by Debezium's key struct, not the entity id"
        return state
    state.partition = partition_for(entity_id, state.partitions)
    state.partition_method = "murmur2 of the key (the entity id), computed as the producers partition"
    lag = next(p for p in lags if p.partition == state.partition)
    state.committed_offset, state.end_offset, state.lag = lag.committed, lag.end, lag.lag
    return state


def _index(blueprint: IndexBlueprint, entity_id: str) -> list[IndexCopy]:
    engine = get_engine()
    states = dict(blueprint.write_targets().values_list("name", "state"))
    copies = []
    for target in write_targets(blueprint):
        copies.append(IndexCopy(target.name, "main", states.get(target.name, ""), blueprint.read_alias))
        if target.sidecar:
            copies.append(IndexCopy(target.sidecar["name"], "sidecar", states.get(target.name, ""),
                                    blueprint.sidecar_read_alias))
    for alias in {c.read_alias for c in copies}:
        served = _served_by(engine, alias, entity_id)
        for copy in copies:
            if copy.read_alias != alias:
                continue
            _read_copy(engine, copy, entity_id)
            if isinstance(served, str):
                copy.error = copy.error or served
            elif copy.state == PhysicalIndex.State.LIVE:
                copy.searched_version = served.get(copy.index)
                # A tombstone is hidden by the alias; anything else must be found as stored now.
                copy.searchable = copy.searched_version is not None and copy.searched_version == copy.version \
                    and not copy.deleted
    return copies


def _served_by(engine, alias: str, entity_id: str) -> dict[str, int] | str:
    """Index → version of the document a search through ``alias`` finds now, or an error."""
    try:
        hits = engine.search(alias, {"size": 10, "_source": False, "version": True,
                                     "query": {"ids": {"values": [entity_id]}}})
        return {hit["_index"]: hit.get("_version") for hit in hits["hits"]["hits"]}
    except Exception as exc:
        return f"search through {alias}: {exc}"[:500]


def _read_copy(engine, copy: IndexCopy, entity_id: str) -> None:
    try:
        doc = engine.get(copy.index, entity_id)  # real time: sees writes not yet refreshed
    except Exception as exc:
        copy.error = f"{type(exc).__name__}: {exc}"[:500]
        return
    copy.found = doc is not None and bool(doc.get("found", True))
    if copy.found:
        copy.version = doc.get("_version")
        copy.deleted = bool((doc.get("_source") or {}).get("deleted"))


def _dead_letters(blueprint: IndexBlueprint, entity_id: str) -> list[LetterRef]:
    # A letter the relay could not route has no blueprint, only the topic; an undecodable message
    # has no entity id, only the key it was sent with.
    mine = Q(blueprint=blueprint) | Q(blueprint__isnull=True, topic=blueprint.topic)
    entity = Q(entity_id=entity_id) | Q(entity_id="", key=entity_id.encode())
    letters = DeadLetter.objects.filter(mine & entity).order_by("-created_at", "-id")[:DEAD_LETTERS]
    return [LetterRef(d.pk, d.source, d.reason, d.status, d.version, d.target_index, d.created_at, d.error[:300])
            for d in letters]


def _audit(blueprint: IndexBlueprint, entity_id: str, letter_ids: list[int]) -> list[AuditRef]:
    """Operator actions on this document: re-indexes, writes through the catalog API (recorded as
    ``<aggregate>:<id>``), and replays or discards of its dead letters."""
    touched = Q(target__in=[audit_target(blueprint, entity_id), f"{blueprint.aggregate_type}:{entity_id}"])
    for letter_id in letter_ids:
        touched |= Q(action__startswith="dead_letters.", details__ids__contains=[letter_id])
    events = AuditEvent.objects.filter(touched).order_by("-created_at", "-id")[:AUDIT_EVENTS]
    return [AuditRef(e.pk, e.created_at, e.actor, e.action, e.target, e.outcome) for e in events]

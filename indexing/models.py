"""What the indexing pipeline keeps in Postgres.

- ``OutboxEvent`` is the seed's ``transactional_outbox`` table, written in the
  same transaction as the entity change.
- ``IndexBlueprint`` describes one searchable aggregate (mapping, schema,
  document builder, aliases); ``PhysicalIndex`` is one ``<name>_v<N>`` built
  from it, with its lifecycle state.
- ``DeadLetter`` keeps what the consumer could not index, or the relay could
  not publish, raw bytes included.
- ``UnmappedField`` records fields dropped because the mapping does not know them.
- ``FreshnessMinute`` stores commit-to-index lag quantiles per minute.

Longer than the ~400 lines modules keep to: Django keeps an app's tables in its ``models``
module, and every sub-package of indexing reads them, so they stay together at the bottom layer.
"""

import uuid

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from indexing.conf import searchsync_settings


class OutboxEvent(models.Model):
    event_id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID())
    aggregate_type = models.CharField(max_length=255)
    aggregate_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=128)
    payload = models.JSONField()
    version = models.BigIntegerField()
    created_at = models.DateTimeField(db_default=Now())
    # Beyond the seed columns: the event contract carries the tenant, and the
    # relay marks a row once the broker acknowledged it (cleanup deletes later).
    tenant_id = models.CharField(max_length=255, default="")
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "transactional_outbox"
        indexes = [
            models.Index(fields=["created_at", "event_id"], name="idx_outbox_polling"),
            models.Index(
                fields=["created_at"],
                name="idx_outbox_unpublished",
                condition=models.Q(published_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.aggregate_id} v{self.version}"


class DeleteMode(models.TextChoices):
    TOMBSTONE = "tombstone", "Logical tombstone (deleted: true, hidden by the read alias)"
    HARD = "hard", "Hard delete (versioned delete, raised index.gc_deletes)"


class EventFormat(models.TextChoices):
    OUTBOX = "outbox", "SearchIndexEvent (outbox, via the relay or Debezium's outbox router)"
    DEBEZIUM_TABLE = "debezium_table", "Debezium table change events (before/after/op; the row's change stamp, else the LSN, is the version)"


# A blueprint's sidecar index and aliases carry this suffix (indexing/blueprints/sidecar.py).
SIDECAR_SUFFIX = "_sidecar"


class IndexBlueprint(models.Model):
    """A versioned description of one search index and where its data comes from."""

    name = models.SlugField(max_length=100, unique=True, help_text="Physical indices are named <name>_v<N>.")
    aggregate_type = models.CharField(max_length=100, help_text="Outbox aggregate_type, and the Kafka topic suffix.")
    read_alias = models.CharField(max_length=200, unique=True)
    write_alias = models.CharField(max_length=200, unique=True)
    settings = models.JSONField(default=dict)
    mappings = models.JSONField(default=dict)
    event_schema = models.JSONField(default=dict)
    document_builder = models.CharField(max_length=255, help_text="Name of a registered document builder.")
    source_model = models.CharField(max_length=255, help_text="app_label.Model the backfills read from.")
    delete_mode = models.CharField(max_length=20, choices=DeleteMode.choices, default=DeleteMode.TOMBSTONE)
    sidecar = models.JSONField(default=dict, blank=True,
                               help_text="Fields routed to a sidecar index and its refresh interval (indexing/blueprints/sidecar.py).")
    event_format = models.CharField(max_length=20, choices=EventFormat.choices, default=EventFormat.OUTBOX)
    source_topic = models.CharField(max_length=255, blank=True,
                                    help_text="Kafka topic to consume; default: topic prefix + aggregate type.")
    tombstone_retention_hours = models.PositiveIntegerField(default=24 * 7)
    hard_delete_gc_deletes = models.CharField(max_length=20, default="24h")
    freshness_threshold_ms = models.PositiveIntegerField(null=True, blank=True)
    canary_payload = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    revision = models.PositiveIntegerField(default=1, help_text="Number of the revision the live index was built from.")
    registered_as = models.CharField(max_length=100, blank=True,
                                     help_text="Registered definition (files next to the owning app's code) it follows.")
    # A blueprint declared in files over a table or view (indexing/blueprints/relations.py): where its
    # rows are and how columns become fields; empty for a blueprint registered by Python code.
    relation = models.JSONField(default=dict, blank=True)
    declared_from = models.CharField(max_length=500, blank=True,
                                     help_text="The folder a declared blueprint was proposed from.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def topic(self) -> str:

        return self.source_topic or f"{searchsync_settings.TOPIC_PREFIX}{self.aggregate_type}"

    @property
    def fed_by_table_changes(self) -> bool:
        return self.event_format == EventFormat.DEBEZIUM_TABLE

    @property
    def consumer_group(self) -> str:

        return f"{searchsync_settings.CONSUMER_GROUP_PREFIX}{self.name}"

    def physical_name(self, number: int) -> str:
        return f"{self.name}_v{number}"

    def write_targets(self):
        return self.indices.filter(state__in=PhysicalIndex.WRITE_STATES).order_by("number")

    def live_index(self):
        return self.indices.filter(state=PhysicalIndex.State.LIVE).first()

    @property
    def sidecar_read_alias(self) -> str:
        return f"{self.name}{SIDECAR_SUFFIX}_current"

    @property
    def sidecar_write_alias(self) -> str:
        return f"{self.name}{SIDECAR_SUFFIX}_write"

    @property
    def serving_revision(self):
        """The revision of the live index: it follows cutovers and rollbacks."""
        live = self.live_index()
        return live.revision if live else None

    def latest_revision(self):
        return self.revisions.order_by("-number").first()


class ImmutableRevision(Exception):
    pass


class RevisionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableRevision("blueprint revisions are immutable: propose a new one")


class BlueprintRevision(models.Model):
    """One immutable version of a blueprint's definition: settings, mapping, event schema,
    builder, delete mode and golden queries, with who proposed it, when and why."""

    DEFINITION_KEYS = ("settings", "mappings", "event_schema", "document_builder", "delete_mode", "golden_queries",
                       "sidecar", "relation")

    blueprint = models.ForeignKey(IndexBlueprint, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    definition = models.JSONField()
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()
    validation = models.JSONField(default=dict, blank=True, help_text="What the scratch-index validation checked.")

    objects = RevisionQuerySet.as_manager()

    class Meta:
        ordering = ["blueprint", "-number"]
        constraints = [models.UniqueConstraint(fields=["blueprint", "number"], name="uniq_blueprint_revision")]

    def __str__(self):
        return f"{self.blueprint.name} r{self.number}"

    @property
    def short_hash(self) -> str:
        return self.content_hash[:10]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRevision("blueprint revisions are immutable: propose a new one")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRevision("blueprint revisions are immutable and kept")


class PhysicalIndex(models.Model):
    class State(models.TextChoices):
        BUILDING = "building"
        READY = "ready"
        LIVE = "live"
        RETIRED = "retired"

    # Indices that must receive every live change: the serving one and any
    # being built or waiting for cutover, so no update is missing after a swap.
    WRITE_STATES = (State.BUILDING, State.READY, State.LIVE)

    blueprint = models.ForeignKey(IndexBlueprint, on_delete=models.CASCADE, related_name="indices")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.BUILDING)
    blueprint_revision = models.PositiveIntegerField()
    revision = models.ForeignKey("BlueprintRevision", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="indices", help_text="The revision this index was built from.")
    settings = models.JSONField(default=dict)
    mappings = models.JSONField(default=dict)
    # {"name", "fields", "settings", "mappings"} of its sidecar index, or empty: created, aliased,
    # written, reconciled and deleted with this index.
    sidecar = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    live_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["blueprint", "number"]
        constraints = [models.UniqueConstraint(fields=["blueprint", "number"], name="uniq_index_number")]
        verbose_name_plural = "physical indices"

    def __str__(self):
        return f"{self.name} ({self.state})"


class DeadLetter(models.Model):
    class Reason(models.TextChoices):
        UNDECODABLE = "undecodable", "Not JSON / not UTF-8"
        SCHEMA_INVALID = "schema_invalid", "Fails the event schema"
        MAPPING_REJECTED = "mapping_rejected", "Rejected by the index mapping"
        TOO_LARGE = "too_large", "Too large (document or Kafka message)"
        BUILD_FAILED = "build_failed", "Document builder failed"
        RETRIES_EXHAUSTED = "retries_exhausted", "Transient errors outlasted the retries"
        UNSERIALISABLE = "unserialisable", "Outbox row cannot be encoded as an event"
        UNKNOWN_AGGREGATE = "unknown_aggregate", "No blueprint consumes its aggregate type"
        REJECTED = "rejected", "Other permanent rejection"

    class Source(models.TextChoices):
        CONSUMER = "consumer", "Indexing consumer (read from Kafka)"
        OUTBOX = "outbox", "Outbox relay (never reached Kafka)"

    class Status(models.TextChoices):
        PENDING = "pending"
        REPLAYED = "replayed"
        DISCARDED = "discarded"

    blueprint = models.ForeignKey(IndexBlueprint, null=True, on_delete=models.SET_NULL, related_name="dead_letters")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.CONSUMER)
    topic = models.CharField(max_length=255)
    # An outbox dead letter never reached Kafka: it has a topic but no partition or offset.
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)
    key = models.BinaryField(null=True, blank=True)
    raw_value = models.BinaryField(null=True, blank=True)
    reason = models.CharField(max_length=40, choices=Reason.choices)
    error = models.TextField()
    target_index = models.CharField(max_length=255, blank=True)
    entity_id = models.CharField(max_length=255, blank=True)
    event_id = models.CharField(max_length=64, blank=True)
    version = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    replay_count = models.PositiveIntegerField(default=0)
    # One row per message (per target index): a replay of the same offset, or the relay failing on the same
    # outbox row again, counts another attempt on it instead of storing a second row.
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "reason", "created_at"], name="idx_deadletter_filter")]
        permissions = [("operate_pipeline", "Can replay dead letters, run backfills and reconciliations")]
        constraints = [
            # A Kafka message: its place in the log. Documents that never were messages (backfills) have
            # offset -1 and no such identity.
            models.UniqueConstraint(fields=["blueprint", "topic", "partition", "offset", "target_index"],
                                    condition=models.Q(source="consumer", offset__gte=0),
                                    name="uniq_deadletter_message"),
            # An outbox row the relay could not publish: its event id.
            models.UniqueConstraint(fields=["event_id"], condition=models.Q(source="outbox"),
                                    name="uniq_deadletter_outbox_event"),
        ]

    def __str__(self):
        if self.source == self.Source.OUTBOX:
            return f"outbox {self.event_id} → {self.topic} {self.reason}"
        return f"{self.topic}[{self.partition}]@{self.offset} {self.reason}"

    @property
    def raw_text(self) -> str:
        raw = bytes(self.raw_value or b"")
        return raw.decode("utf-8", errors="replace")


class UnmappedField(models.Model):
    """A field the consumer dropped because the index mapping does not map it."""

    index_name = models.CharField(max_length=255)
    field = models.CharField(max_length=255)
    count = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    sample = models.JSONField(null=True, blank=True)
    acknowledged = models.BooleanField(default=False)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["index_name", "field"], name="uniq_unmapped_field")]

    def __str__(self):
        return f"{self.index_name}.{self.field} ×{self.count}"


class FreshnessMinute(models.Model):
    """Lag quantiles of one minute for one blueprint, from events or canaries."""

    class Source(models.TextChoices):
        EVENT = "event", "Commit → acknowledged by bulk"
        CANARY = "canary", "Commit → searchable (canary)"
        SIDECAR = "sidecar", "Commit → searchable in the sidecar index (canary)"

    blueprint = models.ForeignKey(IndexBlueprint, on_delete=models.CASCADE, related_name="freshness")
    source = models.CharField(max_length=10, choices=Source.choices)
    minute = models.DateTimeField()
    count = models.PositiveIntegerField()
    p50_ms = models.FloatField()
    p95_ms = models.FloatField()
    p99_ms = models.FloatField()
    max_ms = models.FloatField()

    class Meta:
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["blueprint", "source", "minute"], name="uniq_freshness_minute")]


from django.conf import settings as django_settings  # noqa: E402  (only the report below needs it)


class Reconciliation(models.Model):
    """One reconciliation run of a blueprint's index against its source table, kept as a report.

    Counts are saved while the run progresses, so the console can show a
    running report; ``sample_ids`` keeps up to ``SAMPLE_SIZE`` ids per drift
    class for an operator to look at.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    DRIFT_CLASSES = ("missing", "stale", "orphaned", "expired_tombstones")
    SAMPLE_SIZE = 20

    blueprint = models.ForeignKey(IndexBlueprint, on_delete=models.CASCADE, related_name="reconciliations")
    index_name = models.CharField(max_length=255, help_text="The physical index compared with the source table.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    dry_run = models.BooleanField(default=True, help_text="Classify only: emit no repair, purge nothing.")
    rows_per_second = models.PositiveIntegerField(null=True, blank=True, help_text="Read throttle; empty = unthrottled.")
    requested_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="reconciliations")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    checked_db = models.BigIntegerField(default=0)
    checked_index = models.BigIntegerField(default=0)
    missing = models.BigIntegerField(default=0)
    stale = models.BigIntegerField(default=0)
    orphaned = models.BigIntegerField(default=0)
    expired_tombstones = models.BigIntegerField(default=0)
    sample_ids = models.JSONField(default=dict, blank=True)
    repaired = models.BigIntegerField(default=0, help_text="Repair events written to the outbox.")
    purged = models.BigIntegerField(default=0, help_text="Expired tombstones deleted from the index.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["blueprint", "-created_at"], name="idx_reconciliation_history")]

    def __str__(self):
        return f"reconciliation #{self.pk} of {self.index_name} ({self.status})"

    @property
    def drift(self) -> int:
        return self.missing + self.stale + self.orphaned + self.expired_tombstones

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED)


class Alert(models.Model):
    """A condition an operator must look at. At most one open alert per blueprint and
    condition: it is updated while the condition lasts and resolved when it clears."""

    class Condition(models.TextChoices):
        FRESHNESS = "freshness", "Freshness past its threshold"
        DRIFT = "drift", "Reconciliation found drift"
        DEAD_LETTERS = "dead_letters", "Dead letters growing"
        SLOT_LAG = "slot_lag", "Replication slot retaining WAL"
        CLUSTER_RED = "cluster_red", "Search cluster red"

    class State(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    blueprint = models.ForeignKey(IndexBlueprint, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    condition = models.CharField(max_length=30, choices=Condition.choices)
    subject = models.CharField(max_length=255, blank=True, help_text="What the alert is about beyond the blueprint, e.g. a slot.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    message = models.TextField()
    value = models.FloatField(null=True, blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified = models.BooleanField(default=False)
    notify_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["blueprint", "condition", "subject"], condition=models.Q(state="open"),
                                    nulls_distinct=False, name="uniq_open_alert")
        ]

    def __str__(self):
        return f"{self.blueprint.name if self.blueprint else self.subject}: {self.get_condition_display()} ({self.state})"

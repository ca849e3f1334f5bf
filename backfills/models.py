"""Backfill jobs and their chunks (the seed's ``backfill_progress`` table)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Backfill(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Purpose(models.TextChoices):
        REFILL = "refill", "Refill part or all of an index"
        REBUILD = "rebuild", "Build a new index version"
        FANOUT = "fanout", "Re-emit documents after a joined row changed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    blueprint = models.ForeignKey("indexing.IndexBlueprint", on_delete=models.CASCADE, related_name="backfills")
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.REFILL)
    target_index = models.ForeignKey("indexing.PhysicalIndex", on_delete=models.CASCADE, related_name="backfills")
    # {"kind": "all"} | {"kind": "range", "start_id", "end_id"} | {"kind": "ids", "ids": [...]}
    # | {"kind": "tenant", "tenant_id"} | {"kind": "updated", "since", "until"}
    # | {"kind": "dependency", "on": "<app.Model>", "id": ...} (fan-outs: rows depending on that row)
    selection = models.JSONField(default=dict)
    rows_per_second = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = unthrottled.")
    chunk_size = models.PositiveIntegerField(default=5000)
    page_size = models.PositiveIntegerField(default=500)
    parallelism = models.PositiveIntegerField(default=2, help_text="Chunk workers started for this backfill.")
    rows_total = models.BigIntegerField(default=0, help_text="Rows the selection held when planned.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"backfill {self.id} → {self.target_index.name} ({self.status})"


class BackfillProgress(models.Model):
    """One chunk of a backfill; workers claim chunks, so a fleet shares the job."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        COMPLETED = "COMPLETED"
        FAILED = "FAILED"

    chunk_id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    backfill = models.ForeignKey(Backfill, on_delete=models.CASCADE, related_name="chunks", db_column="backfill_id")
    index_name = models.CharField(max_length=255)
    start_id = models.BigIntegerField()
    last_processed_id = models.BigIntegerField()
    end_id = models.BigIntegerField()
    status = models.CharField(max_length=64, choices=Status.choices, default=Status.PENDING)
    updated_at = models.DateTimeField(db_default=Now())
    rows_done = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)

    class Meta:
        db_table = "backfill_progress"
        ordering = ["start_id"]
        indexes = [models.Index(fields=["backfill", "status"], name="idx_backfill_chunk_status")]

    def __str__(self):
        return f"[{self.start_id}, {self.end_id}] @{self.last_processed_id} {self.status}"


class GoldenQuery(models.Model):
    """A search whose top results must survive a cutover: a guard before approval."""

    blueprint = models.ForeignKey("indexing.IndexBlueprint", on_delete=models.CASCADE, related_name="golden_queries")
    name = models.CharField(max_length=200)
    query = models.JSONField(help_text='A query clause, e.g. {"match": {"title": "chair"}}.')
    expected_ids = models.JSONField(default=list)
    top_k = models.PositiveIntegerField(default=10)
    min_overlap = models.FloatField(default=0.8, help_text="Share of expected ids that must appear in the top k.")

    class Meta:
        ordering = ["blueprint", "name"]
        verbose_name_plural = "golden queries"

    def __str__(self):
        return f"{self.blueprint.name}: {self.name}"


class Cutover(models.Model):
    """Blue-green switch of a blueprint's aliases to a newly built index, step by step."""

    class State(models.TextChoices):
        DRAFT = "draft"
        BUILDING = "building"
        VERIFYING = "verifying"
        AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
        SWAPPING = "swapping"  # intent recorded, aliases being moved (see cutover.finish_interrupted)
        LIVE = "live"
        ROLLING_BACK = "rolling_back", "rolling back"
        RETIRED = "retired"
        ROLLED_BACK = "rolled_back", "rolled back"
        CANCELLED = "cancelled"
        FAILED = "failed"

    blueprint = models.ForeignKey("indexing.IndexBlueprint", on_delete=models.CASCADE, related_name="cutovers")
    from_index = models.ForeignKey("indexing.PhysicalIndex", null=True, on_delete=models.SET_NULL, related_name="+")
    to_index = models.ForeignKey("indexing.PhysicalIndex", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    backfill = models.ForeignKey(Backfill, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revision = models.ForeignKey("indexing.BlueprintRevision", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="cutovers", help_text="The revision the new index is built from.")
    state = models.CharField(max_length=30, choices=State.choices, default=State.DRAFT)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    guard_results = models.JSONField(default=list, blank=True)
    mapping_diff = models.TextField(blank=True)
    rows_per_second = models.PositiveIntegerField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    rollback_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_cutover", "Can approve an index cutover")]

    def __str__(self):
        return f"cutover {self.pk} of {self.blueprint.name} ({self.state})"

    @property
    def guards_passed(self) -> bool:
        return bool(self.guard_results) and all(g.get("passed") for g in self.guard_results)


class CutoverStep(models.Model):
    """The audit trail: who did what to a cutover, when, and how it went."""

    cutover = models.ForeignKey(Cutover, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=60)
    actor = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField(default=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.step} by {self.actor or 'system'} ({'ok' if self.ok else 'failed'})"

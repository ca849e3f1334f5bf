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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    blueprint = models.ForeignKey("indexing.IndexBlueprint", on_delete=models.CASCADE, related_name="backfills")
    target_index = models.ForeignKey("indexing.PhysicalIndex", on_delete=models.CASCADE, related_name="backfills")
    # {"kind": "all"} | {"kind": "range", "start_id", "end_id"} | {"kind": "ids", "ids": [...]}
    # | {"kind": "tenant", "tenant_id"} | {"kind": "updated", "since", "until"}
    selection = models.JSONField(default=dict)
    rows_per_second = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = unthrottled.")
    chunk_size = models.PositiveIntegerField(default=5000)
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

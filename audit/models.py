"""One append-only table. The ORM refuses to change or delete a row; a database trigger
(migration 0002) refuses UPDATE and DELETE from anywhere else too."""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """Audit events are never changed or deleted."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit events cannot be updated")

    def delete(self):
        raise AppendOnly("audit events cannot be deleted")

    _raw_delete = delete


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        OK = "ok", "ok"
        REFUSED = "refused", "refused"
        FAILED = "failed", "failed"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The username at the time, not a foreign key: the trail outlives deleted users
    # (and a SET NULL would be an UPDATE, which the trigger refuses). Empty = the system.
    actor = models.CharField(max_length=150, blank=True, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OK, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "-created_at"], name="audit_action_time")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor or 'system'} {self.action} {self.target}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("audit events cannot be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit events cannot be deleted")

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        from django.contrib.admin.models import LogEntry
        from django.db.models.signals import post_save

        post_save.connect(_admin_action, sender=LogEntry, dispatch_uid="audit-admin-log")
        # Declares its repeatable action in every process, so the beat's summaries know it.
        from . import refusals  # noqa: F401


def _admin_action(sender, instance, created, **kwargs):
    """Changes made in the Django admin (one object at a time) join the trail."""
    if not created:
        return
    from . import record

    verb = {1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, "action")
    model = instance.content_type.model if instance.content_type_id else "object"
    record(instance.user, f"admin.{verb}", f"{model}:{instance.object_id} {instance.object_repr}"[:255],
           details={"change": instance.get_change_message()})

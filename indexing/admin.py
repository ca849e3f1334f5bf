from django.contrib import admin

from indexing.models import BlueprintRevision, DeadLetter, FreshnessMinute, IndexBlueprint, OutboxEvent, PhysicalIndex, UnmappedField


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "aggregate_type", "aggregate_id", "event_type", "version", "created_at", "published_at")
    list_filter = ("aggregate_type", "event_type")
    search_fields = ("aggregate_id", "event_id")
    date_hierarchy = "created_at"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Blueprints change only through revisions (manage.py blueprints propose) and cutovers."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PhysicalIndexInline(admin.TabularInline):
    model = PhysicalIndex
    extra = 0
    fields = ("name", "number", "state", "revision", "created_at", "live_at", "retired_at")
    readonly_fields = fields
    has_add_permission = has_change_permission = has_delete_permission = ReadOnlyAdmin.has_add_permission


class BlueprintRevisionInline(admin.TabularInline):
    model = BlueprintRevision
    extra = 0
    fields = ("number", "content_hash", "created_by", "created_at", "reason")
    readonly_fields = fields
    has_add_permission = has_change_permission = has_delete_permission = ReadOnlyAdmin.has_add_permission


@admin.register(IndexBlueprint)
class IndexBlueprintAdmin(ReadOnlyAdmin):
    list_display = ("name", "aggregate_type", "read_alias", "write_alias", "delete_mode", "revision", "enabled")
    inlines = [BlueprintRevisionInline, PhysicalIndexInline]


@admin.register(BlueprintRevision)
class BlueprintRevisionAdmin(ReadOnlyAdmin):
    list_display = ("blueprint", "number", "content_hash", "created_by", "created_at", "reason")
    list_filter = ("blueprint",)


@admin.register(PhysicalIndex)
class PhysicalIndexAdmin(ReadOnlyAdmin):
    list_display = ("name", "blueprint", "state", "revision", "created_at", "live_at")
    list_filter = ("state", "blueprint")


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "blueprint", "topic", "partition", "offset", "reason", "status", "created_at")
    list_filter = ("reason", "status", "blueprint")
    search_fields = ("entity_id", "event_id", "error")


@admin.register(UnmappedField)
class UnmappedFieldAdmin(admin.ModelAdmin):
    list_display = ("index_name", "field", "count", "first_seen", "last_seen", "acknowledged")
    list_filter = ("acknowledged",)


@admin.register(FreshnessMinute)
class FreshnessMinuteAdmin(admin.ModelAdmin):
    list_display = ("blueprint", "source", "minute", "count", "p50_ms", "p95_ms", "p99_ms")
    list_filter = ("source", "blueprint")


from indexing.models import Reconciliation  # noqa: E402


@admin.register(Reconciliation)
class ReconciliationAdmin(admin.ModelAdmin):
    list_display = ("id", "blueprint", "index_name", "status", "dry_run", "missing", "stale", "orphaned",
                    "expired_tombstones", "repaired", "purged", "created_at", "duration_s")
    list_filter = ("status", "dry_run", "blueprint")
    # Only the throttle is for an operator to change (a running run picks it up per chunk).
    readonly_fields = [f.name for f in Reconciliation._meta.fields if f.name not in ("id", "rows_per_second")]

    def has_add_permission(self, request):
        return False  # a report comes from a run: start one from the console or the API

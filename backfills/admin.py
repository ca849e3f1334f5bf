from django.contrib import admin

from .models import Backfill, BackfillProgress


class BackfillProgressInline(admin.TabularInline):
    model = BackfillProgress
    extra = 0
    fields = ("start_id", "last_processed_id", "end_id", "status", "rows_done", "attempts", "worker", "updated_at")
    readonly_fields = fields


@admin.register(Backfill)
class BackfillAdmin(admin.ModelAdmin):
    list_display = ("id", "blueprint", "target_index", "status", "rows_per_second", "created_at")
    list_filter = ("status", "blueprint")
    inlines = [BackfillProgressInline]


@admin.register(BackfillProgress)
class BackfillProgressAdmin(admin.ModelAdmin):
    list_display = ("chunk_id", "backfill", "index_name", "start_id", "last_processed_id", "end_id", "status", "updated_at")
    list_filter = ("status",)

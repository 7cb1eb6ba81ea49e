from django.contrib import admin

from shop.core.models import PendingFileDeletion, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queue", "seen_at")
    list_filter = ("queue",)
    readonly_fields = ("hostname", "queue", "seen_at")


@admin.register(PendingFileDeletion)
class PendingFileDeletionAdmin(admin.ModelAdmin):
    """Files an erasure or a deleted creative still owes the storage (beat's sweep retries them)."""

    list_display = ("name", "prefix", "storage", "created_at", "attempts", "last_error")
    list_filter = ("storage", "prefix")
    readonly_fields = ("storage", "name", "prefix", "created_at", "attempts", "last_error")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

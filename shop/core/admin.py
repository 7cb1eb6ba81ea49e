from django.contrib import admin

from shop.core.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "queue", "seen_at")
    list_filter = ("queue",)
    readonly_fields = ("hostname", "queue", "seen_at")

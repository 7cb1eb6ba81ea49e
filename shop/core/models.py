from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker answered on a queue (shown by /readyz and in admin)."""

    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=32)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hostname", "queue"], name="uniq_worker_queue")]
        ordering = ["queue", "hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue}"


class IdempotencyRecord(models.Model):
    """The stored answer to a POST sent with an `Idempotency-Key` (Stripe semantics)."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of what makes the request this one (the endpoint and its meaningful fields)")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="uniq_idempotency_key_per_user")]


class PendingFileDeletion(models.Model):
    """A stored file, or every file under a prefix, that must go: written in the transaction that
    makes it garbage (an erased shopper's photos, a deleted creative's artwork), deleted by a worker
    after the commit, and tried again by beat until the storage has deleted it. A prefix is listed
    again once `FILE_DELETION_SETTLE_SECONDS` have passed, for files written into it meanwhile (an
    upload the erasure raced with)."""

    storage = models.CharField(max_length=64, default="default", help_text="the STORAGES alias")
    name = models.CharField(max_length=512)
    prefix = models.BooleanField(default=False, help_text="every file under this name, which ends with /")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.storage}:{self.name}{'*' if self.prefix else ''}"

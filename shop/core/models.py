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
